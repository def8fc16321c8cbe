"""Training windows from library files: decoded, mono, resampled to the codec rate, split into
windows of the model's training length; near-silent windows skipped; short files padded."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from trainer.data.scan import LibraryItem

SILENCE_DBFS = -60.0


@dataclass(frozen=True)
class Window:
    item: LibraryItem
    start: float  # seconds into the file
    audio: np.ndarray  # (samples,) float32 mono at the codec rate
    padded: bool


def decode_audio(path: Path, sample_rate: int, start: float = 0.0,
                 end: Optional[float] = None) -> np.ndarray:
    """Mono float32 at `sample_rate` for [start, end) seconds of the first audio stream.
    Channels are averaged (FFmpeg's own downmix would raise identical channels by 3 dB)."""
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        first_time = None
        for frame in container.decode(stream):
            if first_time is None:
                first_time = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().mean(axis=0))
            if end is not None and frame.pts is not None and \
                    float(frame.pts * stream.time_base) > end + 0.5:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().mean(axis=0))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    offset = round(max(0.0, start - (first_time or 0.0)) * sample_rate)
    stop = None if end is None else offset + round((end - start) * sample_rate)
    return np.ascontiguousarray(audio[offset:stop], dtype=np.float32)


def _dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * np.log10(max(rms, 1e-12))


def iter_windows(item: LibraryItem, *, window_seconds: float, sample_rate: int,
                 silence_dbfs: float = SILENCE_DBFS) -> Iterator[Window]:
    start = item.caption.start or 0.0
    end = item.caption.end if item.caption.end is not None else item.duration
    audio = decode_audio(item.path, sample_rate, start, end)
    size = round(window_seconds * sample_rate)
    if len(audio) < size:
        if _dbfs(audio) >= silence_dbfs:
            yield Window(item, start, np.pad(audio, (0, size - len(audio))), padded=True)
        return
    for k in range(len(audio) // size):
        segment = audio[k * size:(k + 1) * size]
        if _dbfs(segment) >= silence_dbfs:
            yield Window(item, start + k * window_seconds, segment, padded=False)
