"""MM-DiT joint blocks and DiT (audio-only) blocks of the MMAudio backbone (paper §2.1)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from engine.model.attention import attention
from engine.model.layers import MLP, ChannelLastConv1d, ConvMLP, modulate
from engine.model.rope import apply_rope

QKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class SelfAttention(nn.Module):
    """qkv projection with output channels interleaved per head as (h, d, j), j = q/k/v innermost;
    RMSNorm on q and k, then RoPE."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = nn.RMSNorm(dim // heads)
        self.k_norm = nn.RMSNorm(dim // heads)

    def pre_attention(self, x: torch.Tensor, rot: Optional[torch.Tensor]) -> QKV:
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).view(batch, tokens, self.heads, -1, 3)  # (B, N, H, D, 3)
        qkv = qkv.permute(4, 0, 2, 1, 3)  # (3, B, H, N, D)
        q, k, v = self.q_norm(qkv[0]), self.k_norm(qkv[1]), qkv[2]
        if rot is not None:
            q, k = apply_rope(q, rot), apply_rope(k, rot)
        return q, k, v


class MMDitSingleBlock(nn.Module):
    """One stream of a transformer block with adaLN modulation.

    `pre_only` streams (clip and text in the last joint block) stop after producing q, k, v.
    kernel_size 1 uses Linear / plain MLP (text); otherwise Conv1d (audio, clip).
    """

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, pre_only: bool = False,
                 kernel_size: int = 3):
        super().__init__()
        self.pre_only = pre_only
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = SelfAttention(dim, heads)
        if pre_only:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
            return
        if kernel_size == 1:
            self.linear1 = nn.Linear(dim, dim)
            self.ffn = MLP(dim, int(dim * mlp_ratio))
        else:
            self.linear1 = ChannelLastConv1d(dim, dim, kernel_size, padding=kernel_size // 2)
            self.ffn = ConvMLP(dim, int(dim * mlp_ratio), kernel_size=kernel_size)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def pre_attention(self, x: torch.Tensor, c: torch.Tensor, rot: Optional[torch.Tensor]):
        # c: (B, 1, D) global or (B, N, D) per-token condition
        modulation = self.adaLN_modulation(c).chunk(2 if self.pre_only else 6, dim=-1)
        shift_msa, scale_msa = modulation[0], modulation[1]
        qkv = self.attn.pre_attention(modulate(self.norm1(x), shift_msa, scale_msa), rot)
        return qkv, modulation[2:]

    def post_attention(self, x: torch.Tensor, attn_out: torch.Tensor,
                       modulation: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.pre_only:
            return x
        gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation
        x = x + self.linear1(attn_out) * gate_msa
        x = x + self.ffn(modulate(self.norm2(x), shift_mlp, scale_mlp)) * gate_mlp
        return x

    def forward(self, x: torch.Tensor, c: torch.Tensor, rot: Optional[torch.Tensor]) -> torch.Tensor:
        qkv, modulation = self.pre_attention(x, c, rot)
        return self.post_attention(x, attention(*qkv), modulation)


class JointBlock(nn.Module):
    """MM-DiT block: one joint attention over the concatenation [audio, clip, text]."""

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 4.0, pre_only: bool = False):
        super().__init__()
        self.pre_only = pre_only
        self.latent_block = MMDitSingleBlock(dim, heads, mlp_ratio=mlp_ratio, kernel_size=3)
        self.clip_block = MMDitSingleBlock(dim, heads, mlp_ratio=mlp_ratio, pre_only=pre_only,
                                           kernel_size=3)
        self.text_block = MMDitSingleBlock(dim, heads, mlp_ratio=mlp_ratio, pre_only=pre_only,
                                           kernel_size=1)

    def forward(self, latent: torch.Tensor, clip_f: torch.Tensor, text_f: torch.Tensor,
                global_c: torch.Tensor, extended_c: torch.Tensor, latent_rot: torch.Tensor,
                clip_rot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # audio tokens see the per-token condition (sync), clip and text the global one
        x_qkv, x_mod = self.latent_block.pre_attention(latent, extended_c, latent_rot)
        c_qkv, c_mod = self.clip_block.pre_attention(clip_f, global_c, clip_rot)
        t_qkv, t_mod = self.text_block.pre_attention(text_f, global_c, None)  # text: no RoPE

        joint = [torch.cat([x_qkv[i], c_qkv[i], t_qkv[i]], dim=2) for i in range(3)]
        out = attention(*joint)  # (B, N_audio + N_clip + N_text, D)
        n_audio, n_clip = latent.shape[1], clip_f.shape[1]

        latent = self.latent_block.post_attention(latent, out[:, :n_audio], x_mod)
        if not self.pre_only:
            clip_f = self.clip_block.post_attention(clip_f, out[:, n_audio:n_audio + n_clip], c_mod)
            text_f = self.text_block.post_attention(text_f, out[:, n_audio + n_clip:], t_mod)
        return latent, clip_f, text_f


class FinalBlock(nn.Module):
    """adaLN (global condition, as in MMAudio) then a k=7 convolution to the latent channels."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.conv = ChannelLastConv1d(dim, out_dim, kernel_size=7, padding=3)

    def forward(self, latent: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.conv(modulate(self.norm(latent), shift, scale))
