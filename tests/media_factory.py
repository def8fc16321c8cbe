"""Small test media made with PyAV: every frame shows its own index as a 4 x 4 binary grid in the
central square (so both the CLIP squash and the Synchformer centre crop keep it readable)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np

GRID = 4
BLACK, WHITE = 16, 235


def index_image(index: int, width: int, height: int) -> np.ndarray:
    img = np.full((height, width, 3), 128, np.uint8)
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    cell = side // GRID
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        value = WHITE if (index >> bit) & 1 else BLACK
        img[y0 + row * cell:y0 + (row + 1) * cell, x0 + col * cell:x0 + (col + 1) * cell] = value
    return img


def read_index(img: np.ndarray, region: Optional[tuple[float, float, float, float]] = None) -> int:
    """Decode the grid; region = (x0, x1, y0, y1) of the central square in img, fractions."""
    h, w = img.shape[:2]
    x0, x1, y0, y1 = region or (0.0, 1.0, 0.0, 1.0)
    index = 0
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        cx = int(w * (x0 + (x1 - x0) * (col + 0.5) / GRID))
        cy = int(h * (y0 + (y1 - y0) * (row + 0.5) / GRID))
        if img[cy, cx].mean() > 128:
            index |= 1 << bit
    return index


def make_video(path: Path, *, fps: Fraction = Fraction(25), frames: int = 50, width: int = 160,
               height: int = 96, pts_seconds: Optional[Sequence[Fraction]] = None,
               start_offset: Fraction = Fraction(0), codec: str = "libx264",
               gop: int = 12, audio_seconds: float = 0.0, timecode: Optional[str] = None) -> Path:
    """An MP4 whose frame k shows k. pts_seconds gives explicit (VFR) times; `timecode` writes a
    timecode track starting there (as cameras do)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        if timecode is not None:
            stream.metadata["timecode"] = timecode
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = gop
        if pts_seconds is not None or start_offset:
            stream.codec_context.time_base = Fraction(1, 90000)
        audio = out.add_stream("aac", rate=48000, layout="mono") if audio_seconds else None
        times = pts_seconds or [start_offset + Fraction(k) / fps for k in range(frames)]
        for k, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(index_image(k, width, height), format="rgb24")
            if pts_seconds is not None or start_offset:
                frame.pts = int(t * 90000)
                frame.time_base = Fraction(1, 90000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio is not None:
            _encode_tone(out, audio, audio_seconds)
    return path


def _encode_tone(out, stream, seconds: float, rate: int = 48000) -> None:
    """A quiet 440 Hz tone, in encoder-sized frames."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    for i in range(0, samples.shape[1], 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + 1024]),
                                           format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def make_audio_only(path: Path, seconds: float = 1.0, rate: int = 48000) -> Path:
    with av.open(str(path), "w") as out:
        _encode_tone(out, out.add_stream("aac", rate=rate, layout="mono"), seconds, rate)
    return path


SAMPLE_TIMELINES = Path(__file__).resolve().parents[2] / "shared" / "data" / "timelines"


def sample_with_stand_ins(tmp_path: Path, sample: str, movies: dict[str, int],
                          folder: str = "relinked") -> tuple[Path, Path]:
    """A copy of a shared sample timeline in `tmp_path` (the original is never touched), and a
    search folder of 30 fps stand-in movies for its offline media: {file name: frames}."""
    source = tmp_path / sample
    source.write_bytes((SAMPLE_TIMELINES / sample).read_bytes())
    stand_ins = tmp_path / folder
    stand_ins.mkdir()
    for name, frames in movies.items():
        make_video(stand_ins / name, fps=Fraction(30), frames=frames, width=64, height=64)
    return source, stand_ins
