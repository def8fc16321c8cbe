"""Atomic, never-overwriting writes: every output appears whole under a new name, or not at all."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional


@contextmanager
def atomic_directory(final: Path | str) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; rename it to `final` when the block succeeds.
    Refuses to replace an existing path; removes the temporary directory on failure."""
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"{final} already exists; choose a new name (outputs are never "
                              f"overwritten)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide bundles from colleagues
    try:
        yield tmp
        os.rename(tmp, final)  # atomic on one filesystem; fails if final appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def unwritable_reason(folder: Path | str) -> Optional[str]:
    """Why `folder` cannot take a new file (None when it can). Created if missing and tried for
    real, because permission bits say nothing to root and a read-only volume shows none."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return "it is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".mfmjt-write-check"):
            pass
    except OSError as err:
        return str(err.strerror or err)
    return None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_target(final: Path | str, *, overwrite: bool = False, suffix: str = ".partial",
                  fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final` for any writer (safetensors, PyAV, json); when the
    block succeeds it is moved into place, otherwise removed. Without `overwrite` the final name
    is claimed with a hard link, which fails if another writer got there first: an existing file
    is never replaced, even in a race."""
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; choose a new name (outputs are never "
                              f"overwritten)")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide outputs from other apps
    try:
        yield tmp
        # writers that replace the file (safetensors does) bring mkstemp's 0600 back
        os.chmod(tmp, 0o666 & ~_umask())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise FileExistsError(f"{final} already exists; choose a new name") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(final: Path | str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write bytes atomically (fsynced); an existing file is never replaced unless `overwrite`."""
    with atomic_target(final, overwrite=overwrite, fsync=True) as tmp:
        tmp.write_bytes(data)
    return Path(final)
