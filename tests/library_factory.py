"""A small sound library made at test time, using every caption source, plus bad files."""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.media.bwf import BroadcastInfo, write_bwf
from tests.media_factory import make_video


def write_audio(path: Path, seconds: float, rate: int, codec: str, *, channels: int = 1,
                fmt: str = "s16p", container: str | None = None) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    data = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = np.tile(data, (channels, 1))
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.format = fmt
        frame_size = 1152 if codec == "libmp3lame" else 1024
        samples = data if fmt.endswith("p") else data.T.reshape(1, -1)
        if fmt.startswith("s16"):
            samples = (samples * 32767).astype(np.int16)
        step = frame_size
        for i in range(0, data.shape[1], step):
            chunk = samples[:, i:i + step] if fmt.endswith("p") else samples[:, i * channels:(i + step) * channels]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_library(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_audio(root / "DOORWood_Slam Heavy Oak_JD_MFX.wav", 2.0, 16000, "pcm_s16le", fmt="s16")
    t = np.arange(48000 * 3) / 48000
    tone = (0.2 * np.sin(2 * np.pi * 300 * t))[None].astype(np.float32).repeat(2, axis=0)
    write_bwf(root / "take_042.wav", tone,
              info=BroadcastInfo(description="glass tapped twice", timecode_rate=Fraction(25)))
    (root / "sub").mkdir()
    write_audio(root / "sub" / "clip_a.flac", 20.0, 44100, "flac", fmt="s16")
    (root / "sub" / "manifest.csv").write_text("path,caption,start,end\n"
                                              "clip_a.flac,footsteps on gravel,0.5,16.5\n")
    write_audio(root / "drips.ogg", 1.5, 48000, "libopus", fmt="flt", container="ogg")
    (root / "drips.txt").write_text("water drips in a cave\n")
    write_audio(root / "plain_name-take 3.mp3", 1.0, 44100, "libmp3lame", fmt="s16p")
    make_video(root / "scene.mp4", frames=50, width=96, height=64, audio_seconds=2.0)
    make_video(root / "silent.mp4", frames=10, width=96, height=64)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    (root / "notes.pdf").write_bytes(b"%PDF-1.4 not audio")
    return root


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
