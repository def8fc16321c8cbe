"""Synchformer's visual feature extractor (a MotionFormer with divided space-time attention),
written for inference and loading `synchformer_state_dict.pth` (`vfeat_extractor.*`) strictly.

Input: segments of 16 frames at 25 fps, 224 x 224, values in [-1, 1]. Tubelets of 2 x 16 x 16
give 8 x 14 x 14 tokens plus a CLS token; 12 blocks of divided attention (time first, then space,
each group also attending to the CLS token); the final LayerNorm; then a TransformerEncoderLayer
with its own CLS token pools each of the 8 time steps over space: 8 tokens x 768 per segment.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.features.base import sync_segment_starts

STATE_PREFIX = "vfeat_extractor."


@dataclass(frozen=True)
class SynchformerConfig:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: int = 4
    img_size: int = 224
    patch_size: int = 16
    frames: int = 16  # per segment
    tubelet: int = 2  # frames per token in time

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def time_tokens(self) -> int:
        return self.frames // self.tubelet


def layout_config(state: dict[str, torch.Tensor]) -> SynchformerConfig:
    """The architecture a `vfeat_extractor.*` state dict has (shapes only; the head count does
    not show in shapes: 12 as in the official file, else one per 64 channels)."""
    p = STATE_PREFIX
    try:
        dim = int(state[p + "cls_token"].shape[-1])
        _, _, tubelet, patch, _ = state[p + "patch_embed_3d.proj.weight"].shape
        grid = math.isqrt(int(state[p + "pos_embed"].shape[1]) - 1)
        time_tokens = int(state[p + "temp_embed"].shape[1])
        hidden = int(state[p + "blocks.0.mlp.fc1.weight"].shape[0])
    except (KeyError, ValueError, IndexError) as err:
        raise ValueError(f"not a Synchformer visual extractor ({err!r} missing or malformed)") \
            from None
    depth = len({k.split(".")[2] for k in state if k.startswith(p + "blocks.")})
    return SynchformerConfig(embed_dim=dim, depth=depth, num_heads=12 if dim == 768 else
                             max(1, dim // 64), mlp_ratio=hidden // dim,
                             img_size=grid * int(patch), patch_size=int(patch),
                             frames=time_tokens * int(tubelet), tubelet=int(tubelet))


class PatchEmbed(nn.Module):
    """2-D patch embedding kept only because the official state dict has it (unused)."""

    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)


class TubeletEmbed(nn.Module):
    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        kernel = (cfg.tubelet, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(3, cfg.embed_dim, kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, t*h*w, D)
        return self.proj(x).flatten(2).transpose(1, 2)


class DividedAttention(nn.Module):
    """Attention within groups (one frame, or one spatial position over time) plus the CLS token;
    the CLS token itself attends to every token. q, k, v are contiguous thirds of `qkv`."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, over_time: bool) -> torch.Tensor:
        batch, tokens, dim = x.shape
        patches = (tokens - 1) // frames
        q, k, v = (t.view(batch, tokens, self.heads, -1).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))  # (B, H, 1 + F*N, d)
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)  # (B, H, 1, d)

        def groups(t):  # (B, H, F*N, d) -> (B, H, G, L, d)
            t = t.unflatten(2, (frames, patches))
            return t.transpose(2, 3) if over_time else t

        q_, k_, v_ = groups(q[:, :, 1:]), groups(k[:, :, 1:]), groups(v[:, :, 1:])
        n_groups = q_.shape[2]
        cls_k = k[:, :, :1].unsqueeze(2).expand(-1, -1, n_groups, -1, -1)
        cls_v = v[:, :, :1].unsqueeze(2).expand(-1, -1, n_groups, -1, -1)
        out = F.scaled_dot_product_attention(q_, torch.cat([cls_k, k_], dim=3),
                                             torch.cat([cls_v, v_], dim=3))
        if over_time:
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.flatten(2, 3)], dim=2)  # (B, H, 1 + F*N, d)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DividedAttention(dim, cfg.num_heads)
        self.timeattn = DividedAttention(dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * cfg.mlp_ratio)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, over_time=True)
        x = x + self.attn(self.norm1(x), frames, over_time=False)
        return x + self.mlp(self.norm2(x))


class SpatialPooling(nn.TransformerEncoderLayer):
    """Pools each time step over space with a CLS token through one pre-norm encoder layer."""

    def __init__(self, cfg: SynchformerConfig):
        super().__init__(d_model=cfg.embed_dim, nhead=cfg.num_heads,
                         dim_feedforward=cfg.mlp_ratio * cfg.embed_dim, dropout=0.0,
                         activation=nn.GELU(), layer_norm_eps=1e-6, batch_first=True,
                         norm_first=True)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B', N, D) -> (B', D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return super().forward(x)[:, 0]


class VisualFeatureExtractor(nn.Module):
    """Official names under `vfeat_extractor.`; forward: (B, 3, 16, 224, 224) -> (B, 8, 768)."""

    def __init__(self, cfg: SynchformerConfig = SynchformerConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.patch_embed_3d = TubeletEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid + 1, d))
        self.temp_embed = nn.Parameter(torch.zeros(1, cfg.time_tokens, d))
        self.blocks = nn.ModuleList([DividedSpaceTimeBlock(cfg) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.spatial_attn_agg = SpatialPooling(cfg)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        batch = video.shape[0]
        t, n = cfg.time_tokens, cfg.grid * cfg.grid
        x = self.patch_embed_3d(video)  # (B, t*n, D), time-major
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x], dim=1)
        # separate space and time position embeddings
        space = self.pos_embed[:, 1:].repeat(1, t, 1)
        time = self.temp_embed.repeat_interleave(n, dim=1)
        x = x + torch.cat([self.pos_embed[:, :1], space + time], dim=1)
        for block in self.blocks:
            x = block(x, t)
        x = self.norm(x[:, 1:])  # (B, t*n, D), CLS dropped
        x = x.view(batch * t, n, -1)  # each time step: its n spatial tokens
        return self.spatial_attn_agg(x).view(batch, t, -1)  # (B, t, D)


class SynchformerFeatures(nn.Module):
    """Segments frames and runs the extractor: (M, 224, 224, 3) uint8 -> (segments * 8, 768)."""

    def __init__(self, cfg: SynchformerConfig = SynchformerConfig(), *, batch_size: int = 4):
        super().__init__()
        self.vfeat_extractor = VisualFeatureExtractor(cfg)
        self.batch_size = batch_size

    def load_official(self, state: dict[str, torch.Tensor]) -> None:
        """Strict load of `vfeat_extractor.*` from the official state dict (other keys ignored)."""
        own = {k: v for k, v in state.items() if k.startswith(STATE_PREFIX)}
        self.load_state_dict(own, strict=True)

    @torch.no_grad()  # not inference_mode: callers may use the features where autograd runs
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        cfg = self.vfeat_extractor.cfg
        device = next(self.parameters()).device
        video = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
        video = video.permute(3, 0, 1, 2).float() / 127.5 - 1.0  # (3, M, H, W) in [-1, 1]
        segments = [video[:, s:s + cfg.frames] for s in sync_segment_starts(frames.shape[0])]
        outputs = []
        for i in range(0, len(segments), self.batch_size):
            batch = torch.stack(segments[i:i + self.batch_size])  # (b, 3, 16, H, W)
            outputs.append(self.vfeat_extractor(batch).float())
        return torch.cat(outputs).flatten(0, 1).cpu()  # (S * 8, D)
