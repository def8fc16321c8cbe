"""Training variety (issue 14): the codec's augmentation keeps level and length honest, and the
classifier's nuisances are generic (exact band limits, levels) and never clip."""
import math

import torch

from trainer.augment import _band_limit, _coloured_noise, augment, nuisance


def _tone(freq, n=16000):
    return 0.5 * torch.sin(2 * math.pi * freq * torch.arange(n) / 16000)


def test_augment_keeps_the_shape_never_clips_and_leaves_silent_rows_at_the_noise_floor():
    gen = torch.Generator().manual_seed(0)
    wave = torch.stack([_tone(440)] * 64)
    out = augment(wave, gen, silence_fraction=0.5)
    assert out.shape == wave.shape and out.abs().max() <= 1.0
    rms_db = 20 * torch.log10(out.pow(2).mean(dim=1).sqrt())
    silent = rms_db < -44.0
    assert 16 <= silent.sum() <= 48  # about half the rows are the noise floor alone
    assert rms_db[silent].min() >= -86.0  # a floor from -85 to -45 dBFS, never digital zero
    assert (rms_db[~silent] > rms_db[silent].max()).all()


def test_coloured_noise_has_unit_rms_and_the_asked_slope():
    gen = torch.Generator().manual_seed(1)
    noise = _coloured_noise((2, 64000), torch.tensor([0.0, -6.0]), gen)
    assert torch.allclose(noise.pow(2).mean(dim=1).sqrt(), torch.ones(2), atol=1e-4)
    power = torch.fft.rfft(noise).abs().pow(2)
    freqs = torch.fft.rfftfreq(64000, 1 / 16000)

    def band(lo):
        return power[:, (freqs >= lo) & (freqs < 2 * lo)].mean(dim=1)
    octave_drop = 10 * torch.log10(band(1000) / band(2000))
    assert abs(octave_drop[0]) < 0.5 and abs(octave_drop[1] - 6.0) < 0.5


def test_band_limits_remove_what_lies_outside_the_band():
    gen = torch.Generator().manual_seed(2)
    wave = torch.stack([_tone(8000 * 0.999) + _tone(100) + _tone(1000)] * 8)
    limited = _band_limit(wave, gen)
    spectrum = torch.fft.rfft(limited).abs()
    freqs = torch.fft.rfftfreq(16000, 1 / 16000)
    kept_1k = spectrum[:, (freqs - 1000).abs().argmin()]
    assert (kept_1k > 0.9 * 4000).all()  # 1 kHz always lies inside the band
    # the top tone sits above every drawn low-pass except the full band: mostly gone
    assert (spectrum[:, (freqs - 7992).abs().argmin()] < 1.0).sum() >= 6


def test_nuisance_is_bounded_and_reproducible():
    wave = torch.stack([_tone(440)] * 8)
    a = nuisance(wave, torch.Generator().manual_seed(3))
    b = nuisance(wave, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.abs().max() <= 1.0 and a.shape == wave.shape
