"""Rotary position embeddings, computed per request from the sequence length (MODEL.md §1).

Adjacent pairs (x[2i], x[2i+1]) are rotated by pos * freq_i, theta 10000, in fp32. The CLIP stream's
frequencies are scaled by latent_len / clip_len so a CLIP token and the audio token at the same
wall-clock time share a phase (MMAudio's aligned RoPE).
"""
from __future__ import annotations

import torch


def rope_rotations(length: int, dim: int, *, theta: float = 10000.0, freq_scaling: float = 1.0,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Rotation matrices (1, length, dim/2, 2, 2) for positions 0..length-1."""
    if dim % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {dim}")
    with torch.autocast(device_type=torch.device(device).type, enabled=False):
        pos = torch.arange(length, dtype=torch.float32, device=device)
        freqs = 1.0 / (theta**(torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
        freqs *= freq_scaling
        angles = torch.einsum("n,f->nf", pos, freqs)
        cos, sin = torch.cos(angles), torch.sin(angles)
        rot = torch.stack([cos, -sin, sin, cos], dim=-1)
        return rot.view(1, length, dim // 2, 2, 2)


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, H, N, D) by rot (1, N, D/2, 2, 2); computed in fp32, returned in x's dtype."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        pairs = x.float().view(*x.shape[:-1], -1, 1, 2)
        out = rot[..., 0] * pairs[..., 0] + rot[..., 1] * pairs[..., 1]
        return out.reshape(*x.shape).to(dtype=x.dtype)
