"""Recognising a full disk, whatever layer reports it (OSError, or safetensors' own error type)."""
from __future__ import annotations

import errno

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_MARKERS = ("No space left", "File too large", "Disk quota", f"os error {errno.ENOSPC})",
            f"os error {errno.EFBIG})")


def is_out_of_space(err: BaseException) -> bool:
    return getattr(err, "errno", None) in NO_SPACE or any(m in str(err) for m in _MARKERS)
