"""Where the engine keeps user data (platformdirs) and where the shipped assets live."""
from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

APP_NAME = "mfmjt-foley"


def data_dir() -> Path:
    """User data (weight registry, bundles). MFMJT_DATA_DIR overrides it (tests, studios)."""
    return Path(os.environ.get("MFMJT_DATA_DIR") or user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    return Path(os.environ.get("MFMJT_CACHE_DIR") or user_cache_dir(APP_NAME, appauthor=False))


def weights_dir() -> Path:
    return data_dir() / "weights"


def starter_bundle_dir() -> Path:
    """The embedded starter model shipped inside the package."""
    return Path(__file__).resolve().parent / "assets" / "starter"
