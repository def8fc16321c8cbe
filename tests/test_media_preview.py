"""Preview movies: exact duration, video copied when exact, audio carried through."""
from fractions import Fraction

import av
import numpy as np
import pytest

from engine.media import probe
from engine.media.preview import mux_preview
from tests.media_factory import make_video, read_index


def tone(seconds, rate=48000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)


def streams_of(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        frames = [f for f in c.decode(v)]
        square = ((1 - 64 / 96) / 2, (1 + 64 / 96) / 2, 0.0, 1.0)  # the grid in a 96 x 64 frame
        indices = [read_index(f.to_ndarray(format="rgb24"), square) for f in frames]
        c.seek(0)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(a)])
        return v.codec_context.name, indices, audio, a.rate


def test_range_of_long_gop_video_is_reencoded_exactly(tmp_path):
    src = make_video(tmp_path / "src.mp4", fps=Fraction(25), frames=75, width=96, height=64, gop=25)
    out = mux_preview(src, Fraction(1, 5), Fraction(2), tone(2.5), tmp_path / "p.mov")
    codec, indices, audio, rate = streams_of(out)
    assert indices == list(range(5, 55))  # 0.2 s .. 2.2 s at 25 fps: exactly 50 frames
    assert rate == 48000 and len(audio) == 96000  # exactly 2 s of audio
    assert probe(out).duration == Fraction(2)


def test_intra_only_stream_is_copied(tmp_path):
    src = make_video(tmp_path / "mjpeg.mov", fps=Fraction(25), frames=50, width=96, height=64,
                     codec="mjpeg")
    out = mux_preview(src, Fraction(2, 5), Fraction(1), tone(1.0), tmp_path / "p.mov")
    codec, indices, audio, _ = streams_of(out)
    assert codec == "mjpeg"  # not re-encoded
    assert indices == list(range(10, 35)) and len(audio) == 48000
    with av.open(str(src)) as a, av.open(str(out)) as b:  # the packets are the original bytes
        first_src = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size][10]
        first_out = next(bytes(p) for p in b.demux(b.streams.video[0]) if p.size)
    assert first_src == first_out


def test_never_overwrites_and_refuses_bad_ranges(tmp_path):
    src = make_video(tmp_path / "src.mp4", frames=25, width=96, height=64)
    out = mux_preview(src, 0, 1, tone(1.0), tmp_path / "p.mov")
    with pytest.raises(FileExistsError):
        mux_preview(src, 0, 1, tone(1.0), out)
    with pytest.raises(ValueError, match="outside the media"):
        mux_preview(src, 0.5, 1.0, tone(1.0), tmp_path / "q.mov")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.mov", "src.mp4"]
