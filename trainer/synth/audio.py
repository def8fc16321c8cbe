"""Physically motivated synthesis of each class's contact sounds (mono, 16 kHz).

Struck objects are modal: a sum of exponentially decaying partials at the object's inharmonic
mode ratios (metal: a free plate's 1 : 2.76 : 5.40 : 8.93, wood: strongly damped, glass: high and
long). Non-modal sources are shaped noise (claps, steps, whooshes) or a resonant chirp (a drop's
bubble, Minnaert resonance rising as the cavity closes). Every sound starts at its event time.
"""
from __future__ import annotations

import numpy as np

from trainer.synth.scene import Scene

SAMPLE_RATE = 16000


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def _modal(freqs, decays, amps, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = _t(seconds)
    out = np.zeros_like(t)
    for f, d, a in zip(freqs, decays, amps):
        if f < SAMPLE_RATE / 2 - 200:
            out += a * np.exp(-t / d) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    click = rng.standard_normal(len(t)) * np.exp(-t / 0.002) * 0.3  # the striker's contact
    return out + click


def _band_noise(seconds: float, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[(freqs < lo) | (freqs > hi)] = 0
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.abs(noise).max() + 1e-9)


def _metal(p, rng):
    f0 = 420 * p["pitch"]
    return _modal(f0 * np.array([1, 2.76, 5.40, 8.93]), 0.7 * p["decay"] * np.array([1, .7, .5, .35]),
                  [1, .6, .4, .25], 2.0, rng)


def _wood(p, rng):
    f0 = 230 * p["pitch"]
    return _modal(f0 * np.array([1, 2.31, 4.13]), 0.045 * p["decay"] * np.array([1, .6, .4]),
                  [1, .5, .3], 0.25, rng)


def _glass(p, rng):
    f0 = 2100 * p["pitch"]
    return 0.7 * _modal(f0 * np.array([1, 2.32, 4.25]), 0.45 * p["decay"] * np.array([1, .5, .3]),
                        [1, .3, .1], 1.5, rng)


def _ball(p, rng):
    t = _t(0.12)
    f = 150 * p["pitch"] * (1 + 0.6 * np.exp(-t / 0.01))  # rubber: pitch falls as it unloads
    body = np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.exp(-t / (0.03 * p["decay"]))
    return body + 0.3 * _band_noise(0.12, 200, 2000, rng) * np.exp(-t / 0.006)


def _footstep(p, rng):
    t = _t(0.18)
    thud = _band_noise(0.18, 60, 400, rng) * np.exp(-t / (0.035 * p["decay"]))
    heel = _band_noise(0.18, 1500, 5000, rng) * np.exp(-t / 0.008) * 0.5
    return thud + heel


def _door(p, rng):
    t = _t(0.7)
    boom = np.sin(2 * np.pi * 70 * p["pitch"] * t) * np.exp(-t / (0.18 * p["decay"]))
    rattle = _band_noise(0.7, 300, 4000, rng) * np.exp(-t / 0.06)
    return boom + 0.6 * rattle


def _drip(p, rng):
    t = _t(0.12)
    f = 900 * p["pitch"] * (1 + 1.2 * np.clip(t / 0.04, 0, 1))  # Minnaert resonance rises
    return np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.exp(-t / (0.025 * p["decay"]))


def _whoosh(p, rng):
    t = _t(0.6)
    envelope = np.clip(t / 0.03, 0, 1) * np.exp(-t / (0.16 * p["decay"]))
    lo = 400 * p["pitch"]
    return _band_noise(0.6, lo, lo * 6, rng) * envelope


def _clap(p, rng):
    t = _t(0.15)
    burst = _band_noise(0.15, 700 * p["pitch"], 3500, rng) * np.exp(-t / (0.012 * p["decay"]))
    echo = np.roll(burst, int(0.011 * SAMPLE_RATE)) * 0.35
    echo[: int(0.011 * SAMPLE_RATE)] = 0
    return burst + echo


def _fade_out(n: int) -> np.ndarray:
    """A raised-cosine fade over the last quarter: a cut-off tail would click (a false onset)."""
    fade = np.ones(n)
    tail = n // 4
    fade[n - tail:] = 0.5 * (1 + np.cos(np.linspace(0, np.pi, tail)))
    return fade


VOICES = {"metal": _metal, "wood": _wood, "glass": _glass, "ball": _ball, "footsteps": _footstep,
          "door": _door, "drip": _drip, "whoosh": _whoosh, "clap": _clap}


def synthesize(scene: Scene) -> np.ndarray:
    """The scene's soundtrack: (duration * 16000,) float32, peak about gain_db dBFS."""
    p = scene.sound
    rng = np.random.default_rng(p["noise_seed"])
    n = int(round(scene.duration * SAMPLE_RATE))
    out = np.zeros(n)
    voice = VOICES[scene.sound_class]
    for index, (time, gain) in enumerate(zip(scene.events, p["event_gains"])):
        if scene.sound_class == "ball":  # each bounce a little weaker
            gain *= 0.85 ** index
        sound = voice(p, rng)
        sound = sound / (np.abs(sound).max() + 1e-9) * gain * _fade_out(len(sound))
        start = int(round(time * SAMPLE_RATE))
        end = min(n, start + len(sound))
        out[start:end] += sound[: end - start]
    out *= 10 ** (p["gain_db"] / 20) / max(1.0, np.abs(out).max())
    out += rng.standard_normal(n) * 10 ** (p["noise_db"] / 20)
    return np.clip(out, -1, 1).astype(np.float32)
