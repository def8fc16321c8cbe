"""MF-MJT Foley engine: network, sampling, media, features, codec, bundles (floor 1)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mfmjt-foley")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
