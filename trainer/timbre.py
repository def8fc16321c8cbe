"""Timbre figures that a class label alone does not show (issue 14), measured on any waveform
against the scene's event list, so the same code judges real audio, codec round trips, the
vocoder alone and generated takes:

- tonality: after each event (from 20 ms, past the striker's click, to 300 ms), the spectrum's
  peak over its median in dB. A struck plate or glass rings with a few steady partials (high);
  noise-like sounds and a vocoder's broadband smear score low. Reported per class and as the
  difference from the real audio of the same scenes.
- frame-rate comb: in the quietest 250 ms of a clip, the level at the harmonics of the codec's
  frame rate (16000 / 256 = 62.5 Hz) over the level between them, in dB; 0 for plain noise. A
  vocoder that pulses at its frame rate in silence scores several dB.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FRAME_RATE = 16000 / 256
_AFTER = (0.02, 0.30)  # seconds after the event
_N_FFT = 8192


def event_tonality(wave: np.ndarray, events, sample_rate: int = SAMPLE_RATE) -> list[float]:
    """Peak-to-median spectrum (dB) of the ring after each event that fits in the clip."""
    wave = np.asarray(wave, np.float64)
    out = []
    for time in events:
        a, b = (int(round((time + d) * sample_rate)) for d in _AFTER)
        if b > len(wave):
            continue
        segment = wave[a:b] * np.hanning(b - a)
        spectrum = np.abs(np.fft.rfft(segment, _N_FFT)) + 1e-12
        out.append(float(20 * np.log10(spectrum.max() / np.median(spectrum))))
    return out


def frame_rate_comb(wave: np.ndarray, sample_rate: int = SAMPLE_RATE,
                    frame_rate: float = FRAME_RATE, seconds: float = 0.25) -> float:
    """Harmonics of `frame_rate` over the bins midway between them (dB) in the quietest stretch."""
    wave = np.asarray(wave, np.float64)
    size, hop = int(seconds * sample_rate), int(0.05 * sample_rate)
    if len(wave) < size:
        raise ValueError(f"a clip of {len(wave)} samples is shorter than the {seconds} s measured")
    starts = range(0, len(wave) - size + 1, hop)
    start = min(starts, key=lambda s: float(np.mean(wave[s:s + size] ** 2)))
    segment = wave[start:start + size] * np.hanning(size)
    power = np.abs(np.fft.rfft(segment, 4 * size)) ** 2
    freqs = np.fft.rfftfreq(4 * size, 1 / sample_rate)
    harmonics = np.arange(1, int((sample_rate / 2 - frame_rate) // frame_rate)) * frame_rate

    def level(at: np.ndarray) -> float:
        return float(np.mean(power[np.searchsorted(freqs, at)]))
    return float(10 * np.log10(max(level(harmonics), 1e-30)
                               / max(level(harmonics + frame_rate / 2), 1e-30)))
