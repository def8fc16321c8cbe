"""Small building blocks of the MMAudio backbone, with MMAudio's parameter names.

Names and shapes here decide whether official checkpoints load strictly (MODEL.md §1).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn


def swiglu_hidden_size(hidden: int, multiple_of: int = 256) -> int:
    """Hidden width of MMAudio's SwiGLU feed-forward: 256 * ceil(int(2 * hidden / 3) / 256)."""
    reduced = int(2 * hidden / 3)
    return multiple_of * ((reduced + multiple_of - 1) // multiple_of)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # adaLN: x * (1 + scale) + shift (DiT)
    return x * (1 + scale) + shift


class ChannelLastConv1d(nn.Conv1d):
    """Conv1d applied to (B, N, C) sequences."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, N, C')
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class MLP(nn.Module):
    """SwiGLU feed-forward without biases: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        width = swiglu_hidden_size(hidden)
        self.w1 = nn.Linear(dim, width, bias=False)
        self.w2 = nn.Linear(width, dim, bias=False)
        self.w3 = nn.Linear(dim, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class ConvMLP(nn.Module):
    """SwiGLU feed-forward whose projections are (bias-free) 1-D convolutions over tokens."""

    def __init__(self, dim: int, hidden: int, *, kernel_size: int = 3):
        super().__init__()
        width = swiglu_hidden_size(hidden)
        padding = kernel_size // 2
        self.w1 = ChannelLastConv1d(dim, width, kernel_size, padding=padding, bias=False)
        self.w2 = ChannelLastConv1d(width, dim, kernel_size, padding=padding, bias=False)
        self.w3 = ChannelLastConv1d(dim, width, kernel_size, padding=padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of a time in [0, 1] (not x1000), [cos, sin] order, then an MLP.

    v1 networks use 256 frequencies with max_period 10000; v2 uses `hidden` frequencies with
    max_period 1 (MODEL.md §1). The same class embeds Δ = end - start for MeanFlow (paper §3.2).
    """

    def __init__(self, dim: int, *, frequency_size: int, max_period: float):
        super().__init__()
        if frequency_size % 2:
            raise ValueError(f"frequency_size must be even, got {frequency_size}")
        self.mlp = nn.Sequential(nn.Linear(frequency_size, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.frequency_size = frequency_size
        self.max_period = max_period

    def frequencies(self, device: torch.device) -> torch.Tensor:
        # Computed per call (no buffer: bundles load onto the meta device, then assign weights).
        # Same order of float operations as the reference, so embeddings match bit for bit.
        exponents = torch.arange(0, self.frequency_size, 2, dtype=torch.float32,
                                 device=device) / self.frequency_size
        return (10000 / self.max_period) * (1.0 / (10000**exponents))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, D)
        args = t[:, None].float() * self.frequencies(t.device)[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(embedding.to(t.dtype))


def xavier_linear_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


__all__ = [
    "ChannelLastConv1d", "ConvMLP", "MLP", "TimestepEmbedder", "modulate", "swiglu_hidden_size",
    "xavier_linear_init",
]
