"""Magnitude-preserving layers (EDM2: Karras et al. 2024) used by MMAudio's 1-D VAE."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mp_normalize(x: torch.Tensor, dim=None, eps: float = 1e-4) -> torch.Tensor:
    """x / (eps + ||x|| / sqrt(n)): unit RMS over `dim` (all but the first by default)."""
    if dim is None:
        dim = list(range(1, x.ndim))
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    norm = torch.add(eps, norm, alpha=math.sqrt(norm.numel() / x.numel()))
    return x / norm.to(x.dtype)


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x) / 0.596


def mp_sum(a: torch.Tensor, b: torch.Tensor, t: float = 0.5) -> torch.Tensor:
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t ** 2)


class MPConv1D(nn.Module):
    """Conv1d with weight normalisation to unit magnitude and 1 / sqrt(fan_in) scale.

    While training the normalisation is applied on the fly (and the stored weight is kept
    normalised, EDM2's forced weight normalisation); `remove_weight_norm()` bakes it into the
    weight for inference, as the official checkpoints expect after loading.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size))
        self.weight_norm_removed = False

    def _effective_weight(self) -> torch.Tensor:
        w = self.weight.to(torch.float32)
        if self.training:
            with torch.no_grad():
                self.weight.copy_(mp_normalize(w))
        w = mp_normalize(w) / math.sqrt(w[0].numel())
        return w.to(self.weight.dtype)

    def forward(self, x: torch.Tensor, gain=1) -> torch.Tensor:
        w = self.weight if self.weight_norm_removed else self._effective_weight()
        return F.conv1d(x, w * gain, padding=w.shape[-1] // 2)

    @torch.no_grad()
    def remove_weight_norm(self) -> "MPConv1D":
        if not self.weight_norm_removed:
            w = mp_normalize(self.weight.to(torch.float32))
            self.weight.copy_((w / math.sqrt(w[0].numel())).to(self.weight.dtype))
            self.weight_norm_removed = True
        return self
