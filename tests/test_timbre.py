"""Timbre figures (issue 14): a ringing partial scores high tonality and noise low; a pulse train
at the codec's frame rate in silence shows as a comb and plain noise does not."""
import numpy as np
import pytest

from trainer.timbre import FRAME_RATE, event_tonality, frame_rate_comb


def _noise(seconds=1.0, level=1e-3, seed=0):
    return np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * level


def test_a_ringing_partial_is_tonal_and_noise_is_not():
    t = np.arange(32000) / 16000
    ring = 0.5 * np.sin(2 * np.pi * 700 * t) * np.exp(-(t - 0.5) / 0.3) * (t >= 0.5)
    burst = np.random.default_rng(1).standard_normal(32000) * np.exp(-(t - 0.5) / 0.3) * (t >= 0.5)
    tonal = event_tonality(ring + _noise(2.0), [0.5])
    noisy = event_tonality(0.5 * burst + _noise(2.0), [0.5])
    assert len(tonal) == 1 and tonal[0] > 50.0
    assert noisy[0] < 25.0
    assert event_tonality(ring, [1.9]) == []  # the ring after 1.9 s runs past the clip: skipped


def test_the_frame_rate_comb_shows_pulses_in_silence_only():
    noise = _noise()
    assert FRAME_RATE == 62.5
    assert abs(frame_rate_comb(noise)) < 1.5
    pulses = noise.copy()
    pulses[::256] += 0.02
    assert frame_rate_comb(pulses) > 8.0
    loud_then_quiet = noise.copy()
    loud_then_quiet[:4000] += np.random.default_rng(2).standard_normal(4000)  # loud noise first
    assert abs(frame_rate_comb(loud_then_quiet)) < 1.5  # measured where it is quietest
    with pytest.raises(ValueError, match="shorter than"):
        frame_rate_comb(noise[:1000])
