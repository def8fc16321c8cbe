"""The takes list: one row per take (name, seed, sync score, waveform over spectrogram, play,
favourite, regenerate, rename, delete), rows dragged out as files onto an NLE's bin, and the
list restored from the takes folder after a restart (favourites and names in a sidecar there)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PyQt6.QtCore import QMimeData, QSize, Qt, QUrl, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                             QPushButton, QVBoxLayout, QWidget)

from ui.takeview import TakeView

SIDECAR = ".mfmjt_panel.json"  # favourites, per takes folder
TRASH = ".deleted"             # deleted takes are moved here, never destroyed
SAFE_NAME = re.compile(r"^[^/\\:*?\"<>|\x00-\x1f]{1,120}$")


@dataclass
class TakeItem:
    path: Path
    seed: Optional[int] = None
    sync_score: Optional[float] = None
    segment: int = 0          # which of a timeline's segments (0 for a movie)
    take: int = 1
    start: float = 0.0        # document seconds where the take's audio starts
    favourite: bool = False
    samples: Optional[np.ndarray] = None
    rate: int = 48000
    spectrogram: object = None  # QImage, made with the samples (off the UI thread)

    @property
    def name(self) -> str:
        return self.path.stem

    def load(self) -> "TakeItem":
        from engine.media.bwf import read_bwf
        from ui.takeview import mono, spectrogram_image
        data = read_bwf(self.path)  # samples (channels, n)
        self.samples, self.rate = np.asarray(data.samples.T, np.float32), int(data.sample_rate)
        self.spectrogram = spectrogram_image(mono(self.samples)[::max(1, self.rate // 16000)])
        return self


def read_sidecar(folder: Path) -> dict:
    """{"favourites": [file names], "takes": {file name: {seed, sync_score, start, segment}}}"""
    try:
        data = json.loads((folder / SIDECAR).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_sidecar(folder: Path, items: list[TakeItem]) -> None:
    """What a restart needs that the WAVs do not say (favourites, where each take starts)."""
    from engine.atomic import atomic_write_bytes
    if not folder.is_dir():
        return
    known = read_sidecar(folder).get("takes", {})
    here = [t for t in items if t.path.parent == folder]
    known.update({t.path.name: {"seed": t.seed, "sync_score": t.sync_score, "start": t.start,
                                "segment": t.segment, "take": t.take} for t in here})
    data = {"favourites": sorted(t.path.name for t in here if t.favourite),
            "takes": {name: v for name, v in known.items() if (folder / name).exists()}}
    atomic_write_bytes(folder / SIDECAR, json.dumps(data, indent=1).encode(), overwrite=True)


ORIGINATOR = re.compile(r"take(\d+)-seed(\d+)")


def restore_takes(folder: Path, stem_prefix: str) -> list[TakeItem]:
    """The takes a previous session left in `folder` for this document (names starting with
    `stem_prefix`), oldest first, with their details from the sidecar, else the BWF's bext."""
    if not folder.is_dir():
        return []
    sidecar = read_sidecar(folder)
    favourites, known = set(sidecar.get("favourites", [])), sidecar.get("takes", {})
    items = []
    for path in sorted(folder.glob("*.wav"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        if not path.name.startswith(stem_prefix):
            continue
        details = known.get(path.name) or _from_bext(path)
        items.append(TakeItem(path=path, seed=details.get("seed"),
                              sync_score=details.get("sync_score"),
                              start=float(details.get("start") or 0.0),
                              segment=int(details.get("segment") or 0),
                              take=int(details.get("take") or 1),
                              favourite=path.name in favourites))
    return items


def _from_bext(path: Path) -> dict:
    from engine.media.bwf import read_bwf
    try:
        reference = read_bwf(path).bext.get("originator_reference", "")
    except Exception:  # a damaged or foreign WAV is listed without its details
        return {}
    found = ORIGINATOR.search(str(reference))
    return {"take": int(found.group(1)), "seed": int(found.group(2))} if found else {}


class TakeRow(QWidget):
    play = pyqtSignal(object)
    favourite = pyqtSignal(object)
    regenerate = pyqtSignal(object)
    delete = pyqtSignal(object)
    rename = pyqtSignal(object)

    def __init__(self, item: TakeItem, parent=None):
        super().__init__(parent)
        self.item = item
        self.title = QLabel()
        self.view = TakeView()
        self.play_button = self._button("▶", "Play / stop this take with the picture", self.play)
        self.star = self._button("☆", "Favourite (inserted and exported first)", self.favourite)
        buttons = [self.play_button, self.star,
                   self._button("↻", "Regenerate: a new take of this range from cached features",
                                self.regenerate),
                   self._button("✎", "Rename the take's file", self.rename),
                   self._button("✕", f"Delete (moved to {TRASH} in the takes folder)", self.delete)]
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        for button in buttons:
            top.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.view)
        self.refresh()

    def _button(self, text: str, tip: str, signal) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setFixedWidth(26)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(lambda: signal.emit(self.item))
        return button

    def refresh(self) -> None:
        item = self.item
        sync = "–" if item.sync_score is None else f"{item.sync_score:.2f}"
        seed = "–" if item.seed is None else str(item.seed)
        self.title.setText(f"sync {sync} · seed {seed} · {item.name}")
        self.title.setToolTip(str(item.path))
        self.star.setText("★" if item.favourite else "☆")
        if item.samples is not None and item.samples is not self.view.source:
            self.view.set_audio(item.samples, item.rate, item.spectrogram)
            self.view.source = item.samples

    def set_playing(self, playing: bool) -> None:
        self.play_button.setText("■" if playing else "▶")


class TakeList(QListWidget):
    """Rows of takes; dragging rows out gives their files as URLs (an NLE's bin imports them)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.rows: list[TakeRow] = []

    def add(self, item: TakeItem) -> TakeRow:
        row = TakeRow(item)
        entry = QListWidgetItem()
        entry.setSizeHint(QSize(200, 92))
        self.addItem(entry)
        self.setItemWidget(entry, row)
        self.rows.append(row)
        return row

    def remove(self, item: TakeItem) -> None:
        for index, row in enumerate(self.rows):
            if row.item is item:
                self.takeItem(index)
                self.rows.pop(index)
                return

    def clear_all(self) -> None:
        self.clear()
        self.rows = []

    def items(self) -> list[TakeItem]:
        return [row.item for row in self.rows]

    def selected_items(self) -> list[TakeItem]:
        chosen = {self.row(e) for e in self.selectedItems()}
        return [row.item for i, row in enumerate(self.rows) if i in chosen]

    def chosen(self) -> list[TakeItem]:
        """What Insert and Export deliver: the favourites, else the selected takes, else all."""
        return ([t for t in self.items() if t.favourite] or self.selected_items()
                or self.items())

    def mimeData(self, entries) -> QMimeData:
        """The rows' files as URLs (their current names: a take may have been renamed)."""
        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(str(self.rows[self.row(e)].item.path)) for e in entries])
        return data

    def row_of(self, item: TakeItem) -> Optional[TakeRow]:
        return next((r for r in self.rows if r.item is item), None)
