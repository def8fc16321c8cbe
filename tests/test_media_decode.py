"""Frame-exact decoding (MODEL.md §4): the k-th sampled frame is the first at or after k / fps."""
import math
from fractions import Fraction

import numpy as np
import pytest

from engine.media import CLIP_FRAMES, SYNC_FRAMES, DecodeStats, MediaError, decode_frames, probe
from tests.media_factory import make_audio_only, make_video, read_index

W, H = 96, 64
SQUASHED_SQUARE = ((1 - H / W) / 2, (1 + H / W) / 2, 0.0, 1.0)  # where the grid lands in CLIP frames


def expected_indices(frame_times, start, duration, fps):
    """Index of the first source frame at or after each target time."""
    out = []
    for k in range(int(duration * fps)):
        target = start + Fraction(k) / fps
        out.append(next(j for j, t in enumerate(frame_times) if t >= target))
    return out


def sampled_indices(path, start, duration, stats=None):
    clip, sync = decode_frames(path, start, duration, stats=stats)
    return [read_index(f, SQUASHED_SQUARE) for f in clip], [read_index(f) for f in sync]


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(24), Fraction(25),
                                  Fraction(30000, 1001), Fraction(30), Fraction(50),
                                  Fraction(60000, 1001), Fraction(60)],
                         ids=lambda r: f"{float(r):.3f}")
def test_every_rate_samples_the_first_frame_at_or_after_each_target(tmp_path, rate):
    frames = math.ceil(2.2 * rate)
    path = make_video(tmp_path / "v.mp4", fps=rate, frames=frames, width=W, height=H)
    times = [Fraction(k) / rate for k in range(frames)]
    start, duration = Fraction(1, 3), Fraction(3, 2)
    clip, sync = sampled_indices(path, start, duration)
    assert clip == expected_indices(times, start, duration, CLIP_FRAMES.fps)
    assert sync == expected_indices(times, start, duration, SYNC_FRAMES.fps)
    assert len(clip) == 12 and len(sync) == 37


def test_variable_frame_rate(tmp_path):
    rng = np.random.default_rng(0)
    gaps = rng.choice([Fraction(1, 60), Fraction(1, 30), Fraction(1, 24), Fraction(1, 12)], 80)
    times = [Fraction(0)]
    for gap in gaps[:-1]:
        times.append(times[-1] + gap)
    path = make_video(tmp_path / "vfr.mp4", fps=Fraction(30), pts_seconds=times, width=W, height=H)
    # 90 kHz clock: the stored times are the rounded ones
    stored = [Fraction(int(t * 90000), 90000) for t in times]
    start, duration = Fraction(1, 5), Fraction(1)
    clip, sync = sampled_indices(path, start, duration)
    assert clip == expected_indices(stored, start, duration, CLIP_FRAMES.fps)
    assert sync == expected_indices(stored, start, duration, SYNC_FRAMES.fps)


def test_stream_start_offset_is_honoured(tmp_path):
    path = make_video(tmp_path / "offset.mp4", fps=Fraction(25), frames=60, width=W, height=H,
                      start_offset=Fraction(3, 2))
    assert probe(path).start_time == Fraction(3, 2)
    _, sync = sampled_indices(path, Fraction(1, 2), Fraction(1))
    assert sync == list(range(13, 38))  # media time 0.5 s is frame 12.5 -> frame 13


def test_seeking_far_into_a_long_file_decodes_few_frames(tmp_path):
    path = make_video(tmp_path / "long.mp4", fps=Fraction(25), frames=25 * 120, width=W, height=H,
                      gop=25)
    stats = DecodeStats()
    _, sync = sampled_indices(path, Fraction(110), Fraction(1), stats)
    assert sync == list(range(2750, 2775))
    assert stats.seeks == 1 and stats.decoded_frames <= 2 * 25 + 2  # not 2,775


def test_low_rate_sources_duplicate_frames(tmp_path):
    path = make_video(tmp_path / "slow.mp4", fps=Fraction(10), frames=25, width=W, height=H)
    _, sync = sampled_indices(path, Fraction(0), Fraction(2))
    assert sync[:6] == [0, 1, 1, 2, 2, 2]  # targets 0, .04, .08, .12, .16, .2 s; frames every .1 s


def test_output_shapes_and_values(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=30, width=W, height=H)
    clip, sync = decode_frames(path, 0, 1.0)
    assert clip.shape == (8, 384, 384, 3) and clip.dtype == np.uint8
    assert sync.shape == (25, 224, 224, 3)


def test_probe_reports_non_square_pixels(tmp_path):
    path = tmp_path / "anamorphic.mp4"
    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(3, 2)
        for k in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 96, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = probe(path)
    assert info.sample_aspect == Fraction(3, 2) and info.display_size == (144, 64)
    clip, sync = decode_frames(path, 0, Fraction(1, 5))
    assert sync.shape == (5, 224, 224, 3)


def test_bad_input_is_one_line_naming_the_path(tmp_path):
    video = make_video(tmp_path / "v.mp4", frames=25, width=W, height=H)  # 1 s
    cases = [
        (tmp_path / "missing.mp4", 0, 1, "file not found"),
        (video, 0, 0, "empty or reversed range"),
        (video, 0.5, -0.2, "empty or reversed range"),
        (video, 0.5, 1.0, "past the end of the media"),
        (make_audio_only(tmp_path / "a.m4a"), 0, 0.5, "has no video stream"),
    ]
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01garbage" * 500)
    cases.append((corrupt, 0, 0.5, "not a readable media file"))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    cases.append((truncated, 0, 0.5, "not a readable media file"))
    unknown = tmp_path / "unknown.mkv"
    mkv = make_video(tmp_path / "v.mkv", frames=25, width=W, height=H)
    unknown.write_bytes(mkv.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/XYZ"))
    cases.append((unknown, 0, 0.5, "unsupported video codec"))
    for path, start, duration, reason in cases:
        with pytest.raises(MediaError) as err:
            decode_frames(path, start, duration)
        message = str(err.value)
        assert message.startswith(f"{path}: ") and reason in message and "\n" not in message


def _write_frames(path, images, *, rotation=None, sar=None, fps=25):
    import av
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for img in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _red_columns(img):
    red = (img[..., 0] > 150) & (img[..., 1] < 100)
    return np.nonzero(red.mean(axis=0) > 0.5)[0]


@pytest.mark.parametrize("rotation", [90, -90])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    img = np.full((64, 96, 3), 40, np.uint8)
    img[:16, :, :] = (230, 20, 20)  # a red band along the coded top edge
    path = _write_frames(tmp_path / "rot.mp4", [img] * 20, rotation=rotation)
    clip, sync = decode_frames(path, 0, Fraction(16, 25))
    # counter-clockwise +90: the top edge is shown on the left; -90: on the right
    for frame, size in ((clip[0], 384), (sync[0], 224)):
        columns = _red_columns(frame)
        assert len(columns) > 0
        if rotation == 90:
            assert columns.min() == 0 and columns.max() < size // 2
        else:
            assert columns.max() == size - 1 and columns.min() > size // 2


def test_non_square_pixels_keep_display_proportions(tmp_path):
    img = np.full((64, 96, 3), 20, np.uint8)
    img[16:48, 32:64] = 235  # a 32 x 32 coded square
    path = _write_frames(tmp_path / "sar.mp4", [img] * 20, sar=Fraction(3, 2))
    _, sync = decode_frames(path, 0, Fraction(16, 25))
    white = sync[0].mean(axis=2) > 128
    height = np.count_nonzero(white.any(axis=1))
    width = np.count_nonzero(white.any(axis=0))
    # shown 48 x 32 (pixels are 1.5x wide), scaled by 224 / 64: 168 x 112
    assert abs(width - 168) <= 3 and abs(height - 112) <= 3


def test_sixty_seconds_stay_well_under_a_gigabyte(tmp_path):
    import tracemalloc
    path = make_video(tmp_path / "minute.mp4", fps=Fraction(25), frames=25 * 61, width=W,
                      height=H, gop=50)
    tracemalloc.start()
    clip, sync = decode_frames(path, 0, 60)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    outputs = clip.nbytes + sync.nbytes  # 480 x 384^2 x 3 + 1500 x 224^2 x 3 = 438 MB
    assert clip.shape[0] == 480 and sync.shape[0] == 1500
    assert peak < outputs + 64 * 2**20  # nothing beyond the outputs themselves is kept
    assert peak < 2**30
