"""Variety for training on the synth world (issue 14).

`augment` (codec training): the same synth sounds at other levels, over other noise floors and in
short rooms, plus stretches of near-silence, so that the VAE and the vocoder learn the mel -> sound
mapping rather than the few timbres and the one level the synth world renders, and so that silence
and noise floors are trained as carefully as the events.
`nuisance` (the evaluator's classifier): generic recording nuisances only (gain, band limits, noise
floor, short rooms, time shift), never anything modelled on a codec's or vocoder's artefacts, so
that the classifier is not brittle yet cannot learn to accept what our codec does to a sound.

All in torch on (B, samples) crops, drawn from a seeded generator (resumed runs draw anew)."""
from __future__ import annotations

import torch

SAMPLE_RATE = 16000


def _coloured_noise(shape, slope_db_per_octave: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise whose spectrum falls by `slope` dB per octave (0 white, -3 pink, -6 brown), per row,
    normalised to unit RMS."""
    white = torch.randn(shape, generator=gen)
    spectrum = torch.fft.rfft(white)
    freqs = torch.fft.rfftfreq(shape[-1], 1 / SAMPLE_RATE).clamp_min(20.0)
    gain = (freqs[None] / 1000.0) ** (slope_db_per_octave[:, None] / (20 * torch.log10(torch.tensor(2.0))))
    noise = torch.fft.irfft(spectrum * gain, shape[-1])
    return noise / noise.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-9)


def _room(wave: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Convolve with a short synthetic room: exponentially decaying noise, RT60 0.05-0.4 s,
    mixed 0-40 % wet."""
    b, n = wave.shape
    rt60 = torch.empty(b, 1).uniform_(0.05, 0.4, generator=gen)
    length = int(0.4 * SAMPLE_RATE)
    t = torch.arange(length)[None] / SAMPLE_RATE
    impulse = torch.randn(b, length, generator=gen) * torch.exp(-6.9 * t / rt60)
    impulse = impulse / impulse.pow(2).sum(dim=-1, keepdim=True).sqrt()
    size = n + length
    wet = torch.fft.irfft(torch.fft.rfft(wave, size) * torch.fft.rfft(impulse, size), size)[:, :n]
    mix = torch.empty(b, 1).uniform_(0.0, 0.4, generator=gen)
    return (1 - mix) * wave + mix * wet


def augment(wave: torch.Tensor, gen: torch.Generator, *, silence_fraction: float = 0.1) -> torch.Tensor:
    """(B, samples) -> (B, samples): rooms on half the rows, a level from -30 to +6 dB (never
    clipping), a noise floor from -85 to -45 dBFS (white to brown), and `silence_fraction` of the
    rows replaced by the noise floor alone."""
    b = wave.shape[0]
    use_room = torch.rand(b, 1, generator=gen) < 0.5
    wave = torch.where(use_room, _room(wave, gen), wave)
    gain_db = torch.empty(b, 1).uniform_(-30.0, 6.0, generator=gen)
    wave = wave * 10 ** (gain_db / 20)
    peak = wave.abs().amax(dim=-1, keepdim=True)
    wave = torch.where(peak > 0.98, wave * 0.98 / peak.clamp_min(1e-9), wave)
    floor_db = torch.empty(b, 1).uniform_(-85.0, -45.0, generator=gen)
    slope = torch.empty(b).uniform_(-6.0, 0.0, generator=gen)
    noise = _coloured_noise(wave.shape, slope, gen) * 10 ** (floor_db / 20)
    silent = torch.rand(b, 1, generator=gen) < silence_fraction
    return (torch.where(silent, torch.zeros_like(wave), wave) + noise).clamp(-1.0, 1.0)


def _band_limit(wave: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A brick-wall band per row: high-pass 0-300 Hz, low-pass 3-8 kHz (telephone to full band)."""
    spectrum = torch.fft.rfft(wave)
    freqs = torch.fft.rfftfreq(wave.shape[-1], 1 / SAMPLE_RATE)[None]
    low = torch.empty(wave.shape[0], 1).uniform_(0.0, 300.0, generator=gen)
    high = torch.empty(wave.shape[0], 1).uniform_(3000.0, 8001.0, generator=gen)
    return torch.fft.irfft(spectrum * ((freqs >= low) & (freqs <= high)), wave.shape[-1])


def nuisance(wave: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, samples) -> (B, samples) with generic recording nuisances for the classifier."""
    b = wave.shape[0]
    shift = torch.randint(-4000, 4000, (b,), generator=gen)
    wave = torch.stack([torch.roll(w, int(s)) for w, s in zip(wave, shift)])
    wave = torch.where(torch.rand(b, 1, generator=gen) < 0.5, _room(wave, gen), wave)
    wave = torch.where(torch.rand(b, 1, generator=gen) < 0.5, _band_limit(wave, gen), wave)
    wave = wave * 10 ** (torch.empty(b, 1).uniform_(-18.0, 6.0, generator=gen) / 20)
    floor_db = torch.empty(b, 1).uniform_(-80.0, -40.0, generator=gen)
    slope = torch.empty(b).uniform_(-6.0, 0.0, generator=gen)
    return (wave + _coloured_noise(wave.shape, slope, gen) * 10 ** (floor_db / 20)).clamp(-1, 1)
