"""A take drawn as editors read sound: the waveform (min / max per pixel column) over its
spectrogram (log magnitude, 0 Hz at the bottom), with the play position as a line."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QWidget

WAVE, PLAYHEAD = QColor("#7fc4ff"), QColor("#e8c15a")


def envelope(samples: np.ndarray, columns: int) -> np.ndarray:
    """(columns, 2) min and max of the samples in each column (silence is 0, 0)."""
    if len(samples) == 0 or columns <= 0:
        return np.zeros((max(columns, 0), 2), np.float32)
    edges = np.minimum(np.linspace(0, len(samples), columns + 1).astype(int)[:-1],
                       len(samples) - 1)
    return np.stack([np.minimum.reduceat(samples, edges), np.maximum.reduceat(samples, edges)],
                    axis=1)


def spectrogram_image(samples: np.ndarray, n_fft: int = 512, hop: int = 256) -> QImage:
    """Log-magnitude spectrogram as an 8-bit image, 80 dB of range, low frequencies at the bottom."""
    if len(samples) < n_fft:
        samples = np.pad(samples, (0, n_fft - len(samples)))
    frames = 1 + (len(samples) - n_fft) // hop
    index = np.arange(n_fft)[None] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(samples[index] * np.hanning(n_fft), axis=1))
    level = 20 * np.log10(spectrum + 1e-9)
    level = np.clip((level - (level.max() - 80)) / 80, 0, 1)
    pixels = np.ascontiguousarray((level.T[::-1] * 255).astype(np.uint8))
    image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.shape[1],
                   QImage.Format.Format_Grayscale8)
    return image.copy()  # owns its pixels


def mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples


class TakeView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.samples = np.zeros(0, np.float32)
        self.rate = 48000
        self.position: Optional[float] = None
        self._spectrogram: Optional[QImage] = None
        self.drawn_columns = 0  # how many waveform columns the last paint drew (tests read it)
        self.source = None  # the samples shown (a row redraws only when they change)
        self.setMinimumHeight(56)

    def set_audio(self, samples: np.ndarray, rate: int,
                  spectrogram: Optional[QImage] = None) -> None:
        """`spectrogram`: made beforehand off the UI thread (`mono_and_spectrogram`)."""
        self.samples = mono(samples)
        self.rate = rate
        self._spectrogram = spectrogram if spectrogram is not None else \
            spectrogram_image(self.samples[::max(1, rate // 16000)])
        self.update()

    def set_position(self, seconds: Optional[float]) -> None:
        self.position = seconds
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        rect = self.rect()
        painter.fillRect(rect, QColor("#101114"))
        half = rect.height() // 2
        if self._spectrogram is not None:
            painter.drawImage(QRectF(0, half, rect.width(), rect.height() - half), self._spectrogram)
        columns = envelope(self.samples, rect.width())
        painter.setPen(QPen(WAVE))
        middle = half / 2
        for x, (low, high) in enumerate(columns):
            painter.drawLine(QPointF(x, middle - high * middle), QPointF(x, middle - low * middle))
        self.drawn_columns = int(np.count_nonzero(columns[:, 1] - columns[:, 0]))
        if self.position is not None and len(self.samples):
            x = self.position * self.rate / len(self.samples) * rect.width()
            painter.setPen(QPen(PLAYHEAD, 1, Qt.PenStyle.SolidLine))
            painter.drawLine(QPointF(x, 0), QPointF(x, rect.height()))
        painter.end()
