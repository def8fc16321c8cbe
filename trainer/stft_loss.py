"""auraloss's multi-resolution STFT loss without the phase spectra it never uses here.

`auraloss.freq.STFTLoss.stft` returns the phase (`torch.angle`) beside the magnitude on every
call, for a phase term our losses weigh 0 (auraloss's default `w_phs`). On one CPU thread the
angles and their copies were a third of the loss's forward and backward (0.76 -> 0.51 s on 16 x
1 s crops at the vocoder's three resolutions) and ~8 % of a starter vocoder step (1.19 -> 1.10
s; issue 14, the build's time budget). The loss and its gradient are auraloss's, unchanged:
tests/test_stft_loss.py compares them with the library's own class."""
from __future__ import annotations

import torch
from auraloss.freq import MultiResolutionSTFTLoss, STFTLoss


class MagnitudeSTFTLoss(STFTLoss):
    """auraloss's STFTLoss; its spectra without the phase unless a phase term is weighed."""

    def stft(self, x: torch.Tensor):
        if self.w_phs:
            return super().stft(x)
        spectrum = torch.stft(x, self.fft_size, self.hop_size, self.win_length,
                              self.window.to(x.device), return_complex=True)
        magnitude = torch.sqrt(torch.clamp(spectrum.real ** 2 + spectrum.imag ** 2,
                                           min=self.eps))
        return magnitude, None


def multi_resolution_stft_loss(*, fft_sizes: list[int], hop_sizes: list[int],
                               win_lengths: list[int]) -> MultiResolutionSTFTLoss:
    """auraloss's MultiResolutionSTFTLoss (its defaults: spectral convergence + log magnitude,
    Hann windows) at these resolutions, each one a `MagnitudeSTFTLoss`."""
    loss = MultiResolutionSTFTLoss(fft_sizes=fft_sizes, hop_sizes=hop_sizes,
                                   win_lengths=win_lengths)
    loss.stft_losses = torch.nn.ModuleList(
        MagnitudeSTFTLoss(fft, hop, window)
        for fft, hop, window in zip(fft_sizes, hop_sizes, win_lengths))
    return loss
