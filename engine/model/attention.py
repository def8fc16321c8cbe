"""The one attention function of the network, and its backend switch.

Forward-mode AD (the MeanFlow JVP, paper eq. 5) is not implemented for the fused flash /
memory-efficient / cuDNN / CPU-flash kernels of scaled_dot_product_attention (pytorch#128971,
#165530), so JVP code must run inside `math_attention()`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Multi-head attention. q, k, v: (B, H, N, D) -> (B, N, H * D)."""
    out = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous())
    batch, heads, tokens, head_dim = out.shape
    return out.transpose(1, 2).reshape(batch, tokens, heads * head_dim)


@contextmanager
def math_attention() -> Iterator[None]:
    """Run attention with the MATH backend: differentiable in forward mode, in any dtype."""
    with sdpa_kernel([SDPBackend.MATH]):
        yield
