"""The panel's settings and recent files, kept between runs in an INI file in the user's config
folder (platformdirs; MFMJT_CONFIG_DIR overrides it, as the tests do)."""
from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QSettings

RECENT_LIMIT = 8
REQUEST_KEYS = ("prompt", "negative_prompt", "guidance", "mode", "steps", "seed", "seed_locked",
                "takes", "best_of", "bundle")


def config_dir() -> Path:
    from platformdirs import user_config_dir
    return Path(os.environ.get("MFMJT_CONFIG_DIR") or user_config_dir("mfmjt", appauthor=False))


class PanelSettings:
    def __init__(self, path: Path | None = None):
        path = path or config_dir() / "panel.ini"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.store = QSettings(str(path), QSettings.Format.IniFormat)

    def recent(self) -> list[str]:
        value = self.store.value("recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [p for p in items if Path(p).exists()]

    def add_recent(self, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent() if p != str(path)]
        self.store.setValue("recent", items[:RECENT_LIMIT])
        self.store.sync()

    def request(self) -> dict:
        return {k: self.store.value(f"request/{k}") for k in REQUEST_KEYS
                if self.store.value(f"request/{k}") is not None}

    def save_request(self, values: dict) -> None:
        for key in REQUEST_KEYS:
            if key in values:
                self.store.setValue(f"request/{key}", values[key])
        self.store.sync()

    def value(self, key: str, default=None):
        return self.store.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.store.setValue(key, value)
        self.store.sync()
