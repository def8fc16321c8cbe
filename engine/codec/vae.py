"""MMAudio's 1-D magnitude-preserving VAE over log-mels (MODEL.md §5), our own implementation.

Encoder: MPConv in, 3 levels (x1, x2, x4 channels) of 2 residual blocks, downsampling by 2 after
level 0 and attention at level 3 only (so none, as in the reference), a middle block with
attention, then mean and log-variance. Decoder mirrors it with 3 blocks per level. Mel statistics
(`data_mean`, `data_std`, (1, C, 1)) are persistent buffers loaded with the weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from engine.codec.mp_layers import MPConv1D, mp_normalize, mp_silu, mp_sum

CLIP_ACTIVATIONS = 256.0


@dataclass(frozen=True)
class VAEConfig:
    data_dim: int
    embed_dim: int
    hidden_dim: int
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_layers: tuple[int, ...] = (3,)
    down_layers: tuple[int, ...] = (0,)


VAE_16K = VAEConfig(data_dim=80, embed_dim=20, hidden_dim=384)
VAE_44K = VAEConfig(data_dim=128, embed_dim=40, hidden_dim=512)


class ResnetBlock1D(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3):
        super().__init__()
        self.conv1 = MPConv1D(in_dim, out_dim, kernel_size)
        self.conv2 = MPConv1D(out_dim, out_dim, kernel_size)
        if in_dim != out_dim:
            self.nin_shortcut = MPConv1D(in_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = mp_normalize(x, dim=1)  # pixel norm
        h = self.conv2(mp_silu(self.conv1(mp_silu(x))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return mp_sum(x, h, t=0.3)


class AttnBlock1D(nn.Module):
    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.qkv = MPConv1D(channels, channels * 3, 1)
        self.proj_out = MPConv1D(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.qkv(x)  # (B, 3C, L), channels as (h, c, j)
        y = y.reshape(y.shape[0], self.heads, -1, 3, y.shape[-1])
        q, k, v = (t.transpose(-1, -2) for t in mp_normalize(y, dim=2).unbind(3))  # (B, h, L, c)
        h = F.scaled_dot_product_attention(q, k, v)
        h = h.transpose(-1, -2).reshape(x.shape[0], -1, x.shape[-1])
        return mp_sum(x, self.proj_out(h), t=0.3)


class Downsample1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = MPConv1D(channels, channels, 1)
        self.conv2 = MPConv1D(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.avg_pool1d(self.conv1(x), kernel_size=2, stride=2))


class Upsample1D(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = MPConv1D(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest-exact"))


def _level(blocks: list[nn.Module], attn: list[nn.Module]) -> nn.Module:
    level = nn.Module()
    level.block = nn.ModuleList(blocks)
    level.attn = nn.ModuleList(attn)
    return level


def _middle(channels: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock1D(channels, channels)
    mid.attn_1 = AttnBlock1D(channels)
    mid.block_2 = ResnetBlock1D(channels, channels)
    return mid


def _run_middle(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    h = mid.block_2(mid.attn_1(mid.block_1(h)))
    return h.clamp(-CLIP_ACTIVATIONS, CLIP_ACTIVATIONS)


class Encoder1D(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.hidden_dim
        self.conv_in = MPConv1D(cfg.data_dim, dim, 3)
        self.down = nn.ModuleList()
        block_in = dim
        for i, mult in enumerate(cfg.ch_mult):
            blocks, attn = [], []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock1D(block_in, dim * mult))
                block_in = dim * mult
                if i in cfg.attn_layers:
                    attn.append(AttnBlock1D(block_in))
            level = _level(blocks, attn)
            if i in cfg.down_layers:
                level.downsample = Downsample1D(block_in)
            self.down.append(level)
        self.mid = _middle(block_in)
        self.conv_out = MPConv1D(block_in, 2 * cfg.embed_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
                h = h.clamp(-CLIP_ACTIVATIONS, CLIP_ACTIVATIONS)
            if i in self.cfg.down_layers:
                h = level.downsample(h)
        h = _run_middle(self.mid, h)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


class Decoder1D(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.hidden_dim
        up_layers = {i + 1 for i in cfg.down_layers}
        block_in = dim * cfg.ch_mult[-1]
        self.conv_in = MPConv1D(cfg.embed_dim, block_in, 3)
        self.mid = _middle(block_in)
        levels = []
        for i in reversed(range(len(cfg.ch_mult))):
            blocks, attn = [], []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResnetBlock1D(block_in, dim * cfg.ch_mult[i]))
                block_in = dim * cfg.ch_mult[i]
                if i in cfg.attn_layers:
                    attn.append(AttnBlock1D(block_in))
            level = _level(blocks, attn)
            if i in up_layers:
                level.upsample = Upsample1D(block_in)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.up_layers = up_layers
        self.conv_out = MPConv1D(block_in, cfg.data_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _run_middle(self.mid, self.conv_in(z))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
                h = h.clamp(-CLIP_ACTIVATIONS, CLIP_ACTIVATIONS)
            if i in self.up_layers:
                h = level.upsample(h)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


@dataclass
class LatentPosterior:
    """Diagonal Gaussian over latents (B, C, T); log-variance clamped to [-30, 20]."""

    mean: torch.Tensor
    logvar: torch.Tensor

    @classmethod
    def from_moments(cls, moments: torch.Tensor) -> "LatentPosterior":
        mean, logvar = moments.chunk(2, dim=1)
        return cls(mean=mean, logvar=logvar.clamp(-30.0, 20.0))

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        noise = torch.empty_like(self.mean).normal_(generator=generator)
        return self.mean + self.std * noise

    def kl(self) -> torch.Tensor:
        """Elementwise KL to N(0, 1) (the reference's form, without the 0.5 on var - 1 - logvar)."""
        return 0.5 * self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar


class MelVAE(nn.Module):
    """encode: log-mel (B, data_dim, T) -> posterior over (B, embed_dim, T / 2);
    decode: (B, embed_dim, T') -> log-mel. The encoder is optional at inference."""

    def __init__(self, cfg: VAEConfig, *, with_encoder: bool = True):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("data_mean", torch.zeros(1, cfg.data_dim, 1))
        self.register_buffer("data_std", torch.ones(1, cfg.data_dim, 1))
        if with_encoder:
            self.encoder = Encoder1D(cfg)
        self.decoder = Decoder1D(cfg)

    @property
    def has_encoder(self) -> bool:
        return hasattr(self, "encoder")

    def encode(self, mel: torch.Tensor) -> LatentPosterior:
        if not self.has_encoder:
            raise RuntimeError("this VAE was loaded without its encoder (inference only)")
        return LatentPosterior.from_moments(self.encoder((mel - self.data_mean) / self.data_std))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent) * self.data_std + self.data_mean

    def remove_weight_norm(self) -> "MelVAE":
        for module in self.modules():
            if isinstance(module, MPConv1D):
                module.remove_weight_norm()
        return self

    def load_official(self, state: dict[str, torch.Tensor]) -> "MelVAE":
        """Strict load of an official v1-16 / v1-44 state dict, then bake the weight norm.
        Without an encoder, the encoder.* keys are ignored (they must still be well formed)."""
        if not self.has_encoder:
            state = {k: v for k, v in state.items() if not k.startswith("encoder.")}
        self.load_state_dict(state, strict=True)
        return self.remove_weight_norm()
