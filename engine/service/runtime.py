"""Where a running engine tells its clients how to reach it (issue 15): `service.json` (url, port,
pid, token file) and the token itself, both 0600, in the user's runtime folder
(`MFMJT_RUNTIME_DIR` overrides it; without XDG_RUNTIME_DIR, the user's config folder). The job
journal lives beside them. Standard library and platformdirs only: the HTTP client reads these
files from a host's Python."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Optional

SERVICE_FILE = "service.json"
TOKEN_FILE = "token"


def runtime_dir() -> Path:
    if os.environ.get("MFMJT_RUNTIME_DIR"):
        return Path(os.environ["MFMJT_RUNTIME_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "mfmjt-foley"
    try:
        from platformdirs import user_config_dir
    except ImportError:  # a host's Python without platformdirs: its Linux default
        return Path.home() / ".config" / "mfmjt-foley" / "service"
    return Path(user_config_dir("mfmjt-foley", appauthor=False)) / "service"


def _private_write(path: Path, text: str) -> None:
    """Written with 0600 from the first byte, then moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def new_token(folder: Optional[Path] = None) -> tuple[str, Path]:
    token = secrets.token_urlsafe(32)
    path = (folder or runtime_dir()) / TOKEN_FILE
    _private_write(path, token)
    return token, path


def announce(record: dict, folder: Optional[Path] = None) -> Path:
    """service.json: how clients find the running engine."""
    path = (folder or runtime_dir()) / SERVICE_FILE
    _private_write(path, json.dumps(record, indent=2))
    return path


def withdraw(pid: int, folder: Optional[Path] = None) -> None:
    """Remove service.json if it still names this process (another engine may have started)."""
    path = (folder or runtime_dir()) / SERVICE_FILE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def discover(folder: Optional[Path] = None) -> Optional[dict]:
    """The running engine's record with its token, or None when none is announced."""
    path = (folder or runtime_dir()) / SERVICE_FILE
    try:
        record = json.loads(path.read_text())
        record["token"] = Path(record["token_file"]).read_text().strip()
        return record
    except (OSError, ValueError, KeyError):
        return None


__all__ = ["announce", "discover", "new_token", "runtime_dir", "withdraw"]
