"""Starter encoders: deterministic, shaped for the network, and they see what matters."""
from fractions import Fraction

import numpy as np
import pytest
import torch

from engine.features import StarterEncoder, sync_segment_starts
from engine.features.starter import compress_motion, token_frames
from engine.media import decode_frames
from engine.model import build_network
from tests.media_factory import make_video


@pytest.fixture(scope="module")
def encoder():
    return StarterEncoder()


def flash_frames(n=50, flashes=(10, 30), size=224):
    """Grey frames with a white flash at the given frame indices (25 fps)."""
    frames = np.full((n, size, size, 3), 60, np.uint8)
    for i in flashes:
        if i < n:
            frames[i] = 250
    return frames


def test_shapes_match_the_network_lengths(encoder, tmp_path):
    path = make_video(tmp_path / "v.mp4", fps=Fraction(25), frames=80, width=96, height=64)
    clip, sync = decode_frames(path, 0, 3)
    feats = encoder.encode_video(clip, sync)
    lengths = build_network("small_16k", device="meta").config.lengths(3.0)
    assert feats.clip.shape == (lengths.clip, encoder.clip_dim)
    assert feats.sync.shape == (lengths.sync, encoder.sync_dim)
    assert feats.clip.dtype == feats.sync.dtype == torch.float32


def test_deterministic_and_versioned(encoder):
    frames = flash_frames()
    a = encoder.encode_video(frames[:24:3], frames)
    b = StarterEncoder().encode_video(frames[:24:3], frames)
    assert torch.equal(a.sync, b.sync) and torch.equal(a.clip, b.clip)
    assert encoder.version == StarterEncoder().version
    assert StarterEncoder(seed=1).version != encoder.version


def test_motion_tokens_mark_flashes_at_their_own_time(encoder):
    frames = flash_frames(flashes=(10, 30))  # 48 frames at 25 fps: 5 segments, 40 tokens
    sync = encoder.encode_video(frames[::3], frames).sync
    assert sync.shape == (40, encoder.sync_dim)
    onset_column = encoder.sync_dim // 2 - 1  # positive change of the global difference
    # token m joins the two frames around (m + 0.5) * 48 / 40 - 0.5: frame 10 is the first
    # frame of token 8 (centre 9.1 -> frames 9, 10) ... so the flash lands where the network's
    # even stretch of tokens onto the audio puts 10 / 25 s
    first, second = sync[:, onset_column], sync[:, -1]
    hits = sorted(set(torch.nonzero(first > 0.5).flatten().tolist())
                  | set(torch.nonzero(second > 0.5).flatten().tolist()))
    times = [(m + 0.5) * 48 / 40 / 25 for m in hits]
    assert hits and all(min(abs(t - 10 / 25), abs(t - 30 / 25)) <= 1.5 / 25 for t in times)
    assert any(abs(t - 10 / 25) <= 1.5 / 25 for t in times)
    assert any(abs(t - 30 / 25) <= 1.5 / 25 for t in times)
    assert sync.abs().max() <= 1.0  # log-compressed


def test_token_frames_spread_tokens_evenly():
    motion = np.arange(10, dtype=np.float32)[:, None].repeat(36, axis=1)
    tokens = token_frames(motion, 5)  # 2 frames per token: (0, 1), (2, 3), ...
    assert tokens[:, 0].tolist() == [0, 2, 4, 6, 8] and tokens[:, 36].tolist() == [1, 3, 5, 7, 9]
    more = token_frames(motion, 20)  # more tokens than frames: each frame pair repeats
    assert more[0, 0] == 0 and more[-1, 36] == 9 and np.all(np.diff(more[:, 0]) >= 0)


def test_motion_compression_keeps_sign_order_and_zero():
    raw = np.array([-0.5, -0.01, 0.0, 0.003, 0.03, 0.5, 5.0], np.float32)
    out = compress_motion(raw)
    assert out[2] == 0 and np.all(np.diff(out) > 0) and out[0] == -out[5]
    assert out[4] == pytest.approx(np.log1p(6) / np.log1p(200), rel=1e-5)


def test_appearance_tells_colours_apart(encoder):
    red = np.zeros((2, 384, 384, 3), np.uint8)
    red[..., 0] = 220
    blue = np.zeros((2, 384, 384, 3), np.uint8)
    blue[..., 2] = 220
    sync = flash_frames(16)
    f_red, f_blue = encoder.encode_video(red, sync).clip, encoder.encode_video(blue, sync).clip
    assert (f_red - f_blue).abs().max() > 0.5
    assert f_red[0, 0] == pytest.approx(220 / 255, abs=1e-3)  # cell (0, 0) mean red


def test_text_features(encoder):
    feats = encoder.encode_text(["glass tapped twice", "", "Glass tapped twice"])
    assert feats.shape == (3, encoder.text_len, encoder.text_dim)
    norms = feats.norm(dim=-1)
    assert torch.allclose(norms[0, :5], torch.ones(5)) and norms[0, 5:].abs().max() == 0
    assert torch.allclose(norms[1, :2], torch.ones(2)) and norms[1, 2:].abs().max() == 0  # SOT, EOT
    assert torch.equal(feats[0], feats[2])  # the CLIP tokenizer lower-cases
    assert not torch.allclose(feats[0], feats[1])


def test_too_few_sync_frames_is_a_clear_error(encoder):
    with pytest.raises(ValueError, match="at least 16 sync frames"):
        encoder.encode_video(flash_frames(2)[:1], flash_frames(10))


def test_flashes_in_a_real_video_land_on_their_sync_tokens(encoder, tmp_path):
    """Media made with PyAV at 30000/1001 fps: flashes at known times reach the right tokens."""
    import av
    rate = Fraction(30000, 1001)
    flash_times = [Fraction(1, 2), Fraction(3, 2)]  # seconds
    flash_frames_src = {int(-(-t * rate // 1)) for t in flash_times}  # first frame at/after t
    path = tmp_path / "flash.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for k in range(75):
            img = np.full((64, 96, 3), 250 if k in flash_frames_src else 40, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    clip, sync = decode_frames(path, 0, 2)
    feats = encoder.encode_video(clip, sync)
    onset_column = encoder.sync_dim // 2 - 1
    half = encoder.sync_dim // 2
    tokens = feats.sync.shape[0]
    assert tokens == len(sync_segment_starts(len(sync))) * 8
    centre = (np.arange(tokens) + 0.5) * len(sync) / tokens - 0.5
    first = np.clip(np.floor(centre).astype(int), 0, len(sync) - 1)
    second = np.clip(first + 1, 0, len(sync) - 1)
    hit_frames = {int(first[m]) for m in torch.nonzero(feats.sync[:, onset_column] > 0.5).flatten()}
    hit_frames |= {int(second[m]) for m in
                   torch.nonzero(feats.sync[:, half + onset_column] > 0.5).flatten()}
    # sample k shows the first frame at/after k / 25, so flash frame j (at time j / rate) is shown
    # by the last 25 fps target at or before its time: floor(j / rate * 25)
    expected = {int(Fraction(j) / rate * 25) for j in flash_frames_src}
    assert hit_frames == expected
