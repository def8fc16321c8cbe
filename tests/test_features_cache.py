"""Feature cache: hits skip decoding, keys change with what changes the features, LRU cap."""
import os
import threading
from fractions import Fraction

import pytest
import torch

from engine.features import FeatureCache, StarterEncoder
from engine.media import decode_frames
from tests.media_factory import make_video


class CountingDecoder:
    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return decode_frames(*args, **kwargs)


@pytest.fixture(scope="module")
def encoder():
    return StarterEncoder()


@pytest.fixture
def video(tmp_path):
    return make_video(tmp_path / "v.mp4", fps=Fraction(25), frames=60, width=96, height=64)


def test_hit_skips_decoding_and_returns_identical_features(tmp_path, video, encoder):
    cache, decoder = FeatureCache(tmp_path / "cache"), CountingDecoder()
    first = cache.video_features(video, 0, 2, encoder, decoder=decoder)
    again = cache.video_features(video, Fraction(0), Fraction(2), encoder, decoder=decoder)
    assert decoder.calls == 1
    assert torch.equal(first.clip, again.clip) and torch.equal(first.sync, again.sync)
    # the picture's motion envelope travels with the features (the sync score needs it)
    assert first.motion.shape == (50,) and torch.equal(first.motion, again.motion)


def test_an_entry_written_before_motion_envelopes_is_computed_again(tmp_path, video, encoder):
    from safetensors.torch import save_file
    cache, decoder = FeatureCache(tmp_path / "cache"), CountingDecoder()
    fresh = cache.video_features(video, 0, 2, encoder, decoder=decoder)
    key = cache.key(video, 0, 2, encoder)
    entry = next((tmp_path / "cache").glob("*/*.safetensors"))
    save_file({"clip": fresh.clip, "sync": fresh.sync}, str(entry), metadata={"key": key})
    again = cache.video_features(video, 0, 2, encoder, decoder=decoder)
    assert decoder.calls == 2 and torch.equal(again.motion, fresh.motion)


def test_key_changes_with_range_encoder_and_media(tmp_path, video, encoder):
    cache = FeatureCache(tmp_path / "cache")
    base = cache.key(video, 0, 2, encoder)
    assert cache.key(video, 0.0, 2.0, encoder) == base  # exact rationals, not float noise
    assert cache.key(video, Fraction(1, 25), 2, encoder) != base
    assert cache.key(video, 0, Fraction(49, 25), encoder) != base
    assert cache.key(video, 0, 2, StarterEncoder(seed=5)) != base
    before = video.read_bytes()
    video.write_bytes(before[:-10] + b"0123456789")  # same size, new content
    os.utime(video, ns=(0, 0))
    assert cache.key(video, 0, 2, encoder) != base
    assert video.stat().st_size == len(before)


def test_damaged_entry_is_recomputed(tmp_path, video, encoder):
    cache, decoder = FeatureCache(tmp_path / "cache"), CountingDecoder()
    cache.video_features(video, 0, 2, encoder, decoder=decoder)
    entry = next((tmp_path / "cache").glob("*/*.safetensors"))
    entry.write_bytes(b"not safetensors")
    cache.video_features(video, 0, 2, encoder, decoder=decoder)
    assert decoder.calls == 2


def test_size_cap_evicts_least_recently_used(tmp_path, video, encoder):
    cache = FeatureCache(tmp_path / "cache")
    feats = cache.video_features(video, 0, 2, encoder)
    entry_size = next((tmp_path / "cache").glob("*/*.safetensors")).stat().st_size
    small = FeatureCache(tmp_path / "small", max_bytes=int(entry_size * 2.5))
    keys = [f"{i:02x}" + "0" * 62 for i in range(3)]
    for i, key in enumerate(keys[:2]):
        small.put(key, feats)
        path = small._path(key)
        os.utime(path, ns=(10**9 * (i + 1), 10**9 * (i + 1)))
    assert small.get(keys[0]) is not None  # touch: keys[0] becomes the most recent
    small.put(keys[2], feats)
    assert small.get(keys[1]) is None
    assert small.get(keys[0]) is not None and small.get(keys[2]) is not None


def test_concurrent_users_agree(tmp_path, video, encoder):
    cache = FeatureCache(tmp_path / "cache")
    results, errors = [], []

    def work():
        try:
            results.append(cache.video_features(video, 0, 2, encoder))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(results) == 4
    assert all(torch.equal(r.sync, results[0].sync) for r in results)
    assert len(list((tmp_path / "cache").glob("*/*"))) == 1  # no stray partial files
