"""Mel front ends (MODEL.md §5). Parity with MMAudio's converter is bit-exact (see the notes)."""
import math

import pytest
import torch
import torchaudio.functional as AF

from engine.codec import MEL_16K, MEL_44K, MelConverter, slaney_mel_basis


@pytest.mark.parametrize("cfg", [MEL_16K, MEL_44K], ids=["16k", "44k"])
def test_basis_matches_an_independent_slaney_implementation(cfg):
    ours = slaney_mel_basis(cfg)
    reference = AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.fmin, cfg.fmax, cfg.n_mels,
                                   cfg.sampling_rate, norm="slaney", mel_scale="slaney").T
    assert ours.shape == (cfg.n_mels, cfg.n_fft // 2 + 1)
    assert torch.allclose(ours, reference, atol=1e-6)
    # unit area per filter (Slaney normalisation), for filters spanning many bins
    bin_hz = cfg.sampling_rate / cfg.n_fft
    areas = ours.sum(dim=1) * bin_hz
    assert torch.allclose(areas[-10:], torch.ones(10), atol=0.02)


@pytest.mark.parametrize("cfg,seconds,frames", [(MEL_16K, 8, 500), (MEL_44K, 8, 689)],
                         ids=["16k", "44k"])
def test_frame_count_and_latent_rate(cfg, seconds, frames):
    mel = MelConverter(cfg)(torch.zeros(1, cfg.sampling_rate * seconds))
    assert mel.shape == (1, cfg.n_mels, frames)
    # latent tokens are mel frames / 2: 250 at 16 kHz and 345 at 44.1 kHz for 8 s
    assert math.ceil(seconds * cfg.frame_rate / 2) == {16000: 250, 44100: 345}[cfg.sampling_rate]


def test_tone_peaks_at_its_mel_band_and_log_base_differs():
    t = torch.arange(16000) / 16000
    tone = 0.5 * torch.sin(2 * math.pi * 1000 * t)[None]
    mel16 = MelConverter(MEL_16K)(tone)
    band = mel16[0, :, 10:-10].mean(dim=1).argmax().item()
    basis = slaney_mel_basis(MEL_16K)
    bin_1k = round(1000 / (16000 / 1024))
    assert band == basis[:, bin_1k].argmax().item()
    # 16 kHz uses log10, 44.1 kHz uses ln: the same magnitude gives values ln(10) apart in scale
    assert mel16.min() >= math.log10(1e-5) - 1e-6


def test_waveform_is_clamped_to_unit_range():
    conv = MelConverter(MEL_16K)
    x = torch.full((1, 4096), 0.8)
    x[0, ::7] = 3.0
    y = x.clone()
    y[0, ::7] = 1.0
    assert torch.equal(conv(x), conv(y))
    with pytest.raises(ValueError, match=r"\(B, samples\)"):
        conv(torch.zeros(4096))
