"""Delivering takes: 48 kHz / 24-bit Broadcast WAVs under new versioned names and a preview movie
of the range with the first take (NLE.md: what editors expect to import)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from engine.cancel import raise_if_cancelled
from engine.media.bwf import (OUTPUT_RATE, BroadcastInfo, LoudnessTarget, resample_to_output,
                              write_bwf)
from engine.media.decode import probe
from engine.media.preview import mux_preview
from engine.naming import (generation_stem, next_generation_version, next_version, preview_path,
                           take_path)


@dataclass
class Delivered:
    takes: list[Path]
    preview: Optional[Path]


def _describe(settings: dict, prompt: str, take) -> str:
    text = (f"MF-MJT Foley {settings['mode']} w={settings['guidance']:g} steps={settings['steps']} "
            f"seed={take.seed}")
    if getattr(take, "sync_score", None) is not None:
        text += f" sync={take.sync_score:.2f}"
    return f"{text} prompt={prompt!r}" if prompt else text


CLAIM_ATTEMPTS = 20  # versions tried when other runs keep taking the names we chose


def write_takes(result, request, out_dir: Path | str, *, stem: Optional[str] = None,
                preview: bool = True, loudness: Optional[LoudnessTarget] = None,
                provenance: Optional[dict] = None, record_start: Optional[Fraction] = None,
                frame_rate: Optional[Fraction] = None, paths: Optional[list[Path]] = None,
                head_handle: Fraction = Fraction(0), cancel=None) -> Delivered:
    """Every take as `<stem>_take<k>_vNNN.wav` (or at `paths`) and the preview as
    `<stem>_preview_vNNN.mov`, all under one version number NNN. `record_start`: timeline seconds
    since midnight of the body (default: the media range's start); the first `head_handle`
    seconds of the take precede it; `frame_rate`: the rate the length is padded to (default:
    the movie's).

    Names are claimed atomically: when another run writing into the same folder takes a name
    first, this delivery moves to the next version. A delivery that fails or is interrupted
    removes what it had written; so does a `cancel` (polled before each file)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    media = None if request.media is None else Path(request.media)
    stem = stem or generation_stem(media, request.prompt)
    rate = frame_rate or (probe(media).frame_rate if media is not None else None) or Fraction(25)
    preview = preview and getattr(result, "picture", True)  # a preview needs a moving picture
    record_start = Fraction(result.start) if record_start is None else Fraction(record_start)
    audio = [resample_to_output(take.audio[None], take.sample_rate)[:, : round(result.duration * OUTPUT_RATE)]
             for take in result.takes]

    def names(version: int) -> tuple[list[Path], Optional[Path]]:
        takes = [take_path(out_dir, stem, take.index, version) for take in result.takes]
        movie = preview_path(out_dir, stem, version) if preview and audio else None
        return takes, movie

    def deliver(take_paths: list[Path], movie_path: Optional[Path]) -> Delivered:
        written: list[Path] = []
        try:
            for take, samples, path in zip(result.takes, audio, take_paths):
                raise_if_cancelled(cancel, f"before writing {path.name}")
                info = BroadcastInfo(description=_describe(result.settings, request.prompt, take)[:256],
                                     originator_reference=f"take{take.index}-seed{take.seed}",
                                     record_start=record_start, timecode_rate=rate,
                                     note=json.dumps(provenance or {})[:1000])
                written.append(write_bwf(path, samples, bit_depth=24, info=info, frame_rate=rate,
                                         loudness=loudness, head_handle=head_handle))
            movie = None
            if movie_path is not None:
                raise_if_cancelled(cancel, f"before writing {movie_path.name}")
                movie = mux_preview(media, result.start, result.duration, np.asarray(audio[0]),
                                    movie_path)
                written.append(movie)
            return Delivered(takes=written[:len(take_paths)], preview=movie)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

    if paths:
        return deliver(list(paths), names(next_version(out_dir, f"{stem}_preview", ".mov"))[1])
    version = next_generation_version(out_dir, stem, len(result.takes))
    for _ in range(CLAIM_ATTEMPTS):
        try:
            return deliver(*names(version))
        except FileExistsError:  # another run claimed one of these names first
            version = max(version + 1, next_generation_version(out_dir, stem, len(result.takes)))
    raise FileExistsError(f"{out_dir}: other runs kept taking the next take names "
                          f"({stem}_take1_v{version:03d}.wav); try again")

