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
    """Write bytes to a temporary file beside `final`, fsync, then rename into place."""
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; choose a new name")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final
