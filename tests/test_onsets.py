"""The onset detector and ±50 ms matching that the quality gate is measured with."""
from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.onsets import LATENCY, detect_onsets, f1_of, match_onsets

RATE = 16000


def clicks(times, seconds=3.0, decay=0.03, seed=0):
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(int(seconds * RATE)) * 1e-4
    t = np.arange(int(0.3 * RATE)) / RATE
    for start in times:
        burst = rng.standard_normal(len(t)) * np.exp(-t / decay) * 0.5
        i = int(round(start * RATE))
        out[i:i + len(burst)] += burst[: len(out) - i]
    return out.astype(np.float32)


def test_detects_each_click_within_a_few_milliseconds():
    times = [0.5, 1.13, 1.9, 2.41]
    found = detect_onsets(clicks(times), RATE)
    assert len(found) == len(times)
    assert np.abs(found - np.array(times)).max() < 0.012
    assert LATENCY < 0  # the raw detector fires early; the correction moves it later


def test_a_stationary_tone_and_an_abrupt_end_are_not_onsets():
    t = np.arange(2 * RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    tone[: RATE // 2] *= np.linspace(0, 1, RATE // 2)  # a slow fade-in is no onset either
    assert len(detect_onsets(tone, RATE)) == 0


def test_threshold_trades_recall_for_precision():
    audio = clicks([0.5, 1.5]) + clicks([1.0], seed=3) * 0.003  # a faint third click
    loose = detect_onsets(audio, RATE, threshold=0.06)
    strict = detect_onsets(audio, RATE, threshold=0.3)
    assert len(loose) >= 3 and len(strict) == 2


def test_matching_counts_hits_within_50_ms_once_each():
    score = match_onsets([1.0, 2.0, 3.0], [1.04, 2.06, 2.99, 3.01, 5.0])
    assert (score.hits, score.detected, score.reference) == (2, 5, 3)
    # 3.0 is matched by 2.99 or 3.01 (either is a best matching), 1.0 by 1.04; 2.06 is too late
    assert sorted(round(abs(o), 3) for o in score.offsets) == [0.01, 0.04]
    assert score.precision == pytest.approx(0.4) and score.recall == pytest.approx(2 / 3)
    empty = match_onsets([1.0], [])
    assert (empty.hits, empty.precision, empty.recall) == (0, 0.0, 0.0)


def test_pooled_f1_counts_every_event_once():
    a = match_onsets([1.0, 2.0], [1.0, 2.0])
    b = match_onsets([1.0, 2.0], [3.0])
    precision, recall, f1 = f1_of([a, b])
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(0.5)
    assert f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
