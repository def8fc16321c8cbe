"""The picture at the playhead and the strip under it. Frames are decoded on a thread of their
own (the latest request wins, so scrubbing never queues work); the UI thread only paints."""
from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PyQt6.QtCore import QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from ui.theme import ACCENT, MUTED


def to_image(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width, _ = rgb.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class FrameLoader(QObject):
    """Decodes `request(key, source)` on one worker thread; emits `ready(key, image)` or
    `missing(key, reason)`. A newer request replaces one not yet started."""
    ready = pyqtSignal(object, QImage)
    missing = pyqtSignal(object, str)

    def __init__(self, height: int = 360, parent=None):
        super().__init__(parent)
        self.height = height
        self._pending: Optional[tuple] = None
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mfmjt-frames", daemon=True)
        self._thread.start()

    def request(self, key, source: Optional[tuple[Path, Fraction]]) -> None:
        with self._wake:
            self._pending = (key, source)
            self._wake.notify()

    def _run(self) -> None:
        from engine.media.picture import picture_at
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                key, source = self._pending
                self._pending = None
            if source is None:
                self.missing.emit(key, "no picture here")
                continue
            try:
                self.ready.emit(key, to_image(picture_at(source[0], source[1], height=self.height)))
            except Exception as err:  # shown on the viewer as words; the panel goes on
                self.missing.emit(key, str(err).splitlines()[0])

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()


class Viewer(QWidget):
    """The frame at the playhead, letterboxed; words when there is no picture."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: Optional[QImage] = None
        self.message = "Open a movie or a timeline (Ctrl+O), or drop one here"
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_image(self, image: QImage) -> None:
        self.image, self.message = image, ""
        self.update()

    def show_message(self, text: str) -> None:
        self.image, self.message = None, text
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#000000"))
        if self.image is not None and not self.image.isNull():
            scaled = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            x, y = (self.width() - scaled.width()) / 2, (self.height() - scaled.height()) / 2
            painter.drawImage(QRectF(x, y, scaled.width(), scaled.height()), self.image)
        if self.message:
            painter.setPen(QColor(MUTED))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
        painter.end()


class RangeStrip(QWidget):
    """Thumbnails along the document with the in / out range shaded and the playhead; a click
    or a drag moves the playhead (`seek(seconds)`); dragging an in or out handle moves that mark
    (`handle_moved("in" | "out", seconds)`)."""
    seek = pyqtSignal(float)
    handle_moved = pyqtSignal(str, float)
    GRAB = 5  # pixels either side of a handle that pick it up

    def __init__(self, parent=None):
        super().__init__(parent)
        self.duration = 1.0
        self.playhead = 0.0
        self.range: tuple[Optional[float], Optional[float]] = (None, None)
        self.thumbnails: list[QImage] = []
        self.marks: list[tuple[float, float, str]] = []  # clips / markers: (in, out, label)
        self.setMinimumHeight(52)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._dragging: Optional[str] = None

    def set_document(self, duration: float, thumbnails: list[QImage],
                     marks: list[tuple[float, float, str]]) -> None:
        self.duration, self.thumbnails, self.marks = max(duration, 1e-6), thumbnails, marks
        self.update()

    def _x(self, seconds: float) -> float:
        return seconds / self.duration * self.width()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#101114"))
        if self.thumbnails:
            width = self.width() / len(self.thumbnails)
            for i, thumb in enumerate(self.thumbnails):
                painter.drawImage(QRectF(i * width, 0, width, self.height() - 12), thumb)
        painter.setFont(QFont(painter.font().family(), 7))
        for start, end, label in self.marks:
            painter.fillRect(QRectF(self._x(start), self.height() - 11,
                                    max(1.0, self._x(end) - self._x(start) - 1), 10),
                             QColor("#3a4a5e"))
            painter.setPen(QColor("#c8d0da"))
            painter.drawText(QPointF(self._x(start) + 2, self.height() - 3), label[:24])
        start, end = self.range
        if start is not None or end is not None:
            a, b = self._x(start or 0.0), self._x(end if end is not None else self.duration)
            shade = QColor(ACCENT)
            shade.setAlpha(70)
            painter.fillRect(QRectF(a, 0, max(1.0, b - a), self.height()), shade)
            painter.setPen(QPen(QColor(ACCENT), 2))
            painter.drawLine(QPointF(a, 0), QPointF(a, self.height()))
            painter.drawLine(QPointF(b, 0), QPointF(b, self.height()))
        painter.setPen(QPen(QColor("#e8c15a"), 1))
        x = self._x(self.playhead)
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.end()

    def _seconds_at(self, x: float) -> float:
        return max(0.0, min(1.0, x / max(1, self.width()))) * self.duration

    def mousePressEvent(self, event) -> None:
        x = event.position().x()
        self._dragging = None
        for name, at in zip(("in", "out"), self.range):
            if at is not None and abs(self._x(at) - x) <= self.GRAB:
                self._dragging = name
        if self._dragging is None:
            self.seek.emit(self._seconds_at(x))

    def mouseMoveEvent(self, event) -> None:
        seconds = self._seconds_at(event.position().x())
        if self._dragging is not None:
            self.handle_moved.emit(self._dragging, seconds)
        else:
            self.seek.emit(seconds)

    def mouseReleaseEvent(self, _event) -> None:
        self._dragging = None


def thumbnail_job(path: Path, count: int, done: Callable[[list[QImage]], None]) -> threading.Thread:
    """Thumbnails of a movie on a thread; `done` gets them (an empty list when they fail)."""
    def run():
        from engine.media.picture import thumbnails
        try:
            images = [to_image(t) for t in thumbnails(path, count, height=40)]
        except Exception:  # the strip is a convenience: without thumbnails it still works
            images = []
        done(images)
    thread = threading.Thread(target=run, name="mfmjt-thumbnails", daemon=True)
    thread.start()
    return thread
