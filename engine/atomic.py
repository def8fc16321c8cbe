"""Atomic, never-overwriting writes: every output appears whole under a new name, or not at all."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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
    try:
        yield tmp
        os.rename(tmp, final)  # atomic on one filesystem; fails if final appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(final: Path | str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write bytes to a temporary file beside `final`, fsync, then move it into place.
    Without `overwrite` the final name is claimed with a hard link, which fails if another writer
    got there first: an existing file is never replaced, even in a race."""
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; choose a new name (outputs are never "
                              f"overwritten)")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise FileExistsError(f"{final} already exists; choose a new name") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return final
