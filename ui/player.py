"""Playing a take (sounddevice), with the clock the viewer follows: the position is the count of
samples the output has taken, so the picture stays with what is heard. The output stream is made
by a factory so that tests can record what would have been played."""
from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

BLOCK = 1024


def sounddevice_stream(*, samplerate: int, channels: int, callback: Callable,
                       finished_callback: Callable):
    import sounddevice  # PortAudio is loaded here, only when something plays
    return sounddevice.OutputStream(samplerate=samplerate, channels=channels, dtype="float32",
                                    blocksize=BLOCK, callback=callback,
                                    finished_callback=finished_callback)


class CallbackStop(Exception):
    """What the callback raises at the end (sounddevice.CallbackStop when it is there)."""


def _stop_exception():
    try:
        import sounddevice
        return sounddevice.CallbackStop
    except (ImportError, OSError):
        return CallbackStop


class AudioPlayer(QObject):
    finished = pyqtSignal()

    def __init__(self, stream_factory: Optional[Callable] = None, parent=None):
        super().__init__(parent)
        self._factory = stream_factory or sounddevice_stream
        self._lock = threading.Lock()
        self._stream = None
        self._samples = np.zeros((0, 1), np.float32)
        self._cursor = 0
        self.rate = 48000
        self.what: Optional[str] = None  # the take playing (a path), for the list to show
        self._number = 0  # numbers each stream: a stopped stream's late "finished" is ignored

    @property
    def playing(self) -> bool:
        return self._stream is not None

    def position(self) -> float:
        """Seconds heard from the start of what is playing."""
        with self._lock:
            return self._cursor / self.rate

    def play(self, samples: np.ndarray, rate: int, *, start: float = 0.0,
             what: Optional[str] = None) -> None:
        """Play (N,) or (N, channels) samples from `start` seconds; stops what was playing."""
        self.stop()
        samples = np.asarray(samples, np.float32)
        samples = samples[:, None] if samples.ndim == 1 else samples
        stop_exception = _stop_exception()
        with self._lock:
            self._samples, self.rate, self.what = samples, int(rate), what
            self._cursor = min(len(samples), max(0, int(start * rate)))

        def callback(out, frames, _time, _status):
            with self._lock:
                chunk = self._samples[self._cursor:self._cursor + frames]
                self._cursor += len(chunk)
            out[:len(chunk)] = chunk
            out[len(chunk):] = 0
            if len(chunk) < frames:
                raise stop_exception()

        self._number += 1
        number = self._number
        self._stream = self._factory(samplerate=self.rate, channels=samples.shape[1],
                                     callback=callback,
                                     finished_callback=lambda: self._ended(number))
        self._stream.start()

    def _ended(self, number: int) -> None:  # the audio thread: the signal is queued
        if number == self._number:  # PortAudio also reports streams we stopped ourselves
            try:
                self.finished.emit()
            except RuntimeError:  # the panel closed meanwhile
                pass

    def stop(self) -> None:
        self._number += 1  # whatever that stream reports from now on is old news
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
