"""Delivering takes: 48 kHz / 24-bit Broadcast WAVs under new versioned names and a preview movie
of the range with the first take (NLE.md: what editors expect to import)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from engine.media.bwf import (OUTPUT_RATE, BroadcastInfo, LoudnessTarget, next_version_path,
                              resample_to_output, write_bwf)
from engine.media.decode import probe
from engine.media.preview import mux_preview


@dataclass
class Delivered:
    takes: list[Path]
    preview: Optional[Path]


def _describe(settings: dict, prompt: str, seed: int) -> str:
    text = f"MF-MJT Foley {settings['mode']} w={settings['guidance']:g} steps={settings['steps']} seed={seed}"
    return f"{text} prompt={prompt!r}" if prompt else text


def write_takes(result, request, out_dir: Path | str, *, stem: Optional[str] = None,
                preview: bool = True, loudness: Optional[LoudnessTarget] = None,
                provenance: Optional[dict] = None, record_start: Optional[Fraction] = None,
                frame_rate: Optional[Fraction] = None, paths: Optional[list[Path]] = None,
                head_handle: Fraction = Fraction(0)) -> Delivered:
    """Every take as `<stem>_take<k>_vNNN.wav` (or at `paths`); the preview as
    `<stem>_preview_vNNN.mov`. `record_start`: timeline seconds since midnight of the body
    (default: the media range's start); the first `head_handle` seconds of the take precede it;
    `frame_rate`: the rate the length is padded to (default: the movie's)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    media = Path(request.media)
    stem = stem or f"{media.stem}_foley"
    rate = frame_rate or probe(media).frame_rate or Fraction(25)
    record_start = Fraction(result.start) if record_start is None else Fraction(record_start)
    written = []
    first_take_48k = None
    for take in result.takes:
        samples = resample_to_output(take.audio[None], take.sample_rate)
        samples = samples[:, : round(result.duration * OUTPUT_RATE)]
        if first_take_48k is None:
            first_take_48k = samples
        info = BroadcastInfo(description=_describe(result.settings, request.prompt, take.seed)[:256],
                             originator_reference=f"take{take.index}-seed{take.seed}",
                             record_start=record_start, timecode_rate=rate,
                             note=json.dumps(provenance or {})[:1000])
        path = paths[take.index - 1] if paths else \
            next_version_path(out_dir, f"{stem}_take{take.index}")
        written.append(write_bwf(path, samples, bit_depth=24, info=info, frame_rate=rate,
                                 loudness=loudness, head_handle=head_handle))
    movie = None
    if preview and first_take_48k is not None:
        movie = mux_preview(media, result.start, result.duration, np.asarray(first_take_48k),
                            next_version_path(out_dir, f"{stem}_preview", ".mov"))
    return Delivered(takes=written, preview=movie)
