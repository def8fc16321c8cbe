"""The per-take sync score (issue 14): the picture's motion onsets against the take's sound onsets,
and `best_of` keeping the best-synchronised candidates."""
import numpy as np
import pytest

from engine.analysis.sync import motion_envelope, motion_onsets, sync_score

RATE = 16000


def _clicks(times, seconds=4.0):
    wave = np.random.default_rng(0).standard_normal(int(seconds * RATE)).astype(np.float32) * 1e-4
    for t in times:
        start = int(t * RATE)
        n = np.arange(1600)
        wave[start:start + 1600] += (0.5 * np.sin(2 * np.pi * 900 * n / RATE)
                                     * np.exp(-n / 200)).astype(np.float32)
    return wave


def test_the_motion_envelope_is_the_mean_change_between_frames():
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    frames[2:, :16] = 255  # half the picture turns white at frame 2 and stays
    envelope = motion_envelope(frames)
    assert envelope.shape == (5,) and envelope.dtype == np.float32
    assert envelope[2] == pytest.approx(0.5) and np.all(envelope[[0, 1, 3, 4]] == 0)
    assert motion_envelope(frames[:0]).shape == (0,)


def test_motion_onsets_are_the_sharp_rises_after_a_dip():
    fps = 25.0
    envelope = np.full(100, 0.001)
    for contact in (20, 55, 80):  # a gradual approach, a one-frame stop, then the jolt
        envelope[contact - 6:contact] = [0.004, 0.008, 0.012, 0.016, 0.02, 0.02]
        envelope[contact] = 0.003
        envelope[contact + 1:contact + 5] = 0.03
    found = motion_onsets(envelope, fps)
    assert np.allclose(found, [21 / fps, 56 / fps, 81 / fps])
    assert motion_onsets(np.full(100, 0.001), fps).size == 0  # a still picture: no onsets
    assert motion_onsets(np.zeros(2), fps).size == 0


def test_sync_score_is_the_f1_of_matched_onsets():
    picture = np.array([0.8, 1.6, 2.4, 3.2])
    assert sync_score(_clicks([0.8, 1.6, 2.4, 3.2]), RATE, picture) == 1.0
    assert sync_score(_clicks([0.8, 1.6]), RATE, picture) == pytest.approx(2 * 2 / 6, abs=1e-4)
    assert sync_score(_clicks([0.3, 1.2, 2.0, 2.8]), RATE, picture) == 0.0  # all 400 ms off
    assert sync_score(_clicks([]), RATE, np.array([])) == 1.0  # silence for a still picture
    assert sync_score(_clicks([]), RATE, picture) == 0.0
