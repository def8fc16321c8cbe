"""A studio's own library as codec training data (issue 14, `mfmjt train codec`).

Every readable file the library scan keeps is decoded to mono at 16 kHz (PyAV: 8-, 16-, 24-bit and
float files alike; stereo and multichannel averaged) and cut into `seconds`-long clips. Files that
are silent teach nothing and are skipped; files that clip are kept but counted, since a codec
trained on them learns the clipping. At most the first MAX_CLIPS_PER_FILE clips of a file are
used (32 s at 4 s each), so one long ambience does not outweigh a library of short effects. The
library itself is only read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import av
import numpy as np
import torch

from engine.errors import UserError
from trainer.data import scan_library
from trainer.data.windows import decode_audio

SILENT_PEAK = 10 ** (-60 / 20)  # a file whose loudest sample stays under -60 dBFS
CLIPPED_LEVEL = 0.999
MAX_CLIPS_PER_FILE = 8


@dataclass
class LibraryClips:
    waves: torch.Tensor  # (N, samples) float32 mono
    files: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    clipped_files: list[Path] = field(default_factory=list)


def library_clips(folder: Path | str, *, seconds: float = 4.0, sample_rate: int = 16000,
                  progress: Optional[Callable[[int, int], None]] = None) -> LibraryClips:
    report = scan_library(folder, window_seconds=min(seconds, 1.0))
    skipped = [(s.path, s.reason) for s in report.skipped]
    size = int(seconds * sample_rate)
    clips, clipped, used = [], [], 0
    for i, item in enumerate(report.items):
        if progress is not None:
            progress(i, len(report.items))
        try:
            audio = decode_audio(item.path, sample_rate)
        except av.error.FFmpegError as err:  # probed fine, but the stream does not decode
            skipped.append((item.path, f"does not decode ({err.strerror or err})"))
            continue
        if len(audio) == 0:
            skipped.append((item.path, "has no sound to learn from"))
        elif np.abs(audio).max() < SILENT_PEAK:
            skipped.append((item.path, "is silent (peak under -60 dBFS)"))
        else:
            used += 1
            if np.mean(np.abs(audio) >= CLIPPED_LEVEL) > 1e-4:
                clipped.append(item.path)
            padded = np.pad(audio, (0, max(0, size - len(audio))))
            starts = range(0, len(padded) - size + 1, size)
            clips += [padded[s:s + size] for s in list(starts)[:MAX_CLIPS_PER_FILE]]
    if progress is not None:
        progress(len(report.items), len(report.items))
    if not clips:
        raise UserError(f"{folder}: no file with sound to train the codec on "
                        f"({len(skipped)} skipped); point it at a folder of sound files",
                        field="library")
    return LibraryClips(waves=torch.from_numpy(np.stack(clips).astype(np.float32)), files=used,
                        skipped=skipped, clipped_files=clipped)
