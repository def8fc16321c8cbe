"""Training losses for codecs: multi-resolution STFT (BigVGAN's resolutions) and KL."""
from __future__ import annotations

import torch

# (n_fft, hop, win) as BigVGAN trains with
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def _magnitude(wave: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    window = torch.hann_window(win, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(wave, n_fft, hop_length=hop, win_length=win, window=window,
                      return_complex=True)
    return spec.abs().clamp_min(1e-7)


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                               resolutions=STFT_RESOLUTIONS) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes.
    pred, target: (B, samples) or (B, 1, samples)."""
    pred, target = pred.reshape(pred.shape[0], -1), target.reshape(target.shape[0], -1)
    if pred.shape != target.shape:
        raise ValueError(f"waveforms differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    total = pred.new_zeros(())
    for n_fft, hop, win in resolutions:
        p, t = _magnitude(pred, n_fft, hop, win), _magnitude(target, n_fft, hop, win)
        convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t)
        log_l1 = (p.log() - t.log()).abs().mean()
        total = total + convergence + log_l1
    return total / len(resolutions)
