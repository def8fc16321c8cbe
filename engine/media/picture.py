"""Pictures for people to look at (the panel's viewer and thumbnail strip): one frame at a time,
at its display aspect and orientation, scaled to a height. The encoders' frames come from
`decode.decode_frames` instead (square, sampled on their own grids)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.media.decode import _open, probe
from engine.media.errors import MediaError


def _shown(frame, info, height: int) -> np.ndarray:
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    width, tall = info.display_size
    if quarter_turns % 2:
        width, tall = tall, width
    out_w = max(2, round(width * height / max(1, tall)))
    coded_w, coded_h = (height, out_w) if quarter_turns % 2 else (out_w, height)
    img = frame.to_ndarray(format="rgb24", width=coded_w, height=coded_h)
    return np.ascontiguousarray(np.rot90(img, k=quarter_turns))


def picture_at(path: Path | str, seconds: Fraction | float, *, height: int = 360,
               info=None) -> np.ndarray:
    """(height, width, 3) uint8 RGB: the frame shown at `seconds` from the movie's first frame
    (the last frame that starts at or before it). `info`: the file's probe, when the caller has
    it (a strip of thumbnails probes once)."""
    path, at = Path(path), Fraction(seconds).limit_denominator(10 ** 6)
    info = info or probe(path)
    if not info.has_video:
        raise MediaError(path, "has no picture (audio only)")
    at = min(max(at, Fraction(0)), max(Fraction(0), info.duration))
    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            base = stream.time_base
            origin = Fraction(stream.start_time or 0) * base
            container.seek(int((origin + at) / base), stream=stream, backward=True)
            shown = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                if shown is not None and Fraction(frame.pts) * base - origin > at:
                    break
                shown = frame
            if shown is None:
                raise MediaError(path, f"no decodable frame at {float(at):.3f} s")
            return _shown(shown, info, height)
    except av.error.FFmpegError as err:
        raise MediaError(path, f"decoding failed ({err.strerror or err}); the file may be "
                               f"corrupt or truncated") from None


def thumbnails(path: Path | str, count: int, *, height: int = 48) -> list[np.ndarray]:
    """`count` pictures spread evenly over the movie (the middle of each slice)."""
    info = probe(path)
    return [picture_at(path, info.duration * (2 * i + 1) / (2 * count), height=height, info=info)
            for i in range(count)]


__all__ = ["picture_at", "thumbnails"]
