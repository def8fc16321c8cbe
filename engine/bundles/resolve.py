"""Which bundle a name means, for every front end: the shipped `starter`, a folder, or a bundle
registered under that name in the user's data folder."""
from __future__ import annotations

from pathlib import Path

from engine.bundles.format import BundleError


def resolve_bundle(name: str | Path) -> Path:
    from engine.paths import data_dir, starter_bundle_dir
    if str(name) == "starter":
        return starter_bundle_dir()
    path = Path(name)
    if path.exists():
        return path
    registered = data_dir() / "bundles" / str(name)
    if registered.exists():
        return registered
    raise BundleError(f"bundle {str(name)!r} is neither a folder nor a registered bundle; give a "
                      f"bundle folder, a registered name or `starter`", field="bundle")


__all__ = ["resolve_bundle"]
