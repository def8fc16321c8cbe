"""The MF-MJT network: MMAudio's MM-DiT + DiT backbone predicting the average velocity (paper §2).

Engine time convention (MMAudio's): t = 0 is noise, t = 1 is data. The network predicts
u(x_t, t, t + dt), the average velocity from t to t + dt, conditioned on (t, dt). dt = 0 is the
instantaneous velocity, so a flow-matching checkpoint is the special case dt = 0 (paper §3.2:
the network conditions on (t, Δt), not on (r, t)).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from engine.model.blocks import FinalBlock, JointBlock, MMDitSingleBlock
from engine.model.conditions import Conditions
from engine.model.config import NetworkConfig
from engine.model.layers import MLP, ChannelLastConv1d, ConvMLP, TimestepEmbedder, xavier_linear_init
from engine.model.rope import rope_rotations

LEGACY_KEYS = ("t_embed.freqs", "latent_rot", "clip_rot")
DELTA_EMBEDDER_PREFIX = "dt_embed."


def _input_projections(cfg: NetworkConfig) -> dict[str, nn.Module]:
    h = cfg.hidden_dim
    act = nn.SiLU if cfg.v2 else nn.SELU
    audio = [ChannelLastConv1d(cfg.latent_dim, h, 7, padding=3), act(),
             ConvMLP(h, h * 4, kernel_size=7)]
    sync = [ChannelLastConv1d(cfg.sync_dim, h, 7, padding=3), act(), ConvMLP(h, h * 4)]
    if cfg.v2:
        clip = [nn.Linear(cfg.clip_dim, h), nn.SiLU(), ConvMLP(h, h * 4)]
        text = [nn.Linear(cfg.text_dim, h), nn.SiLU(), MLP(h, h * 4)]
    else:
        clip = [nn.Linear(cfg.clip_dim, h), ConvMLP(h, h * 4)]
        text = [nn.Linear(cfg.text_dim, h), MLP(h, h * 4)]
    return {"audio_input_proj": nn.Sequential(*audio), "clip_input_proj": nn.Sequential(*clip),
            "sync_input_proj": nn.Sequential(*sync), "text_input_proj": nn.Sequential(*text)}


def _time_embedder(cfg: NetworkConfig) -> TimestepEmbedder:
    if cfg.v2:
        return TimestepEmbedder(cfg.hidden_dim, frequency_size=cfg.hidden_dim, max_period=1)
    return TimestepEmbedder(cfg.hidden_dim, frequency_size=256, max_period=10000)


def _init_time_embedder(embedder: TimestepEmbedder, *, zero_output: bool) -> None:
    """DiT's time-embedder init; the Δ embedder's output layer is zero (function-preserving)."""
    for layer in (embedder.mlp[0], embedder.mlp[2]):
        nn.init.normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)
    if zero_output:
        nn.init.zeros_(embedder.mlp[2].weight)


def new_delta_embedder(config: NetworkConfig) -> TimestepEmbedder:
    """A Δ embedder as a new network has it, for adding to checkpoints that lack one."""
    embedder = _time_embedder(config)
    _init_time_embedder(embedder, zero_output=True)
    return embedder


class MFMJT(nn.Module):
    """MF-MJT network. State-dict names are MMAudio's plus `dt_embed.*` (the Δ embedder)."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = cfg = config
        h = cfg.hidden_dim
        for name, module in _input_projections(cfg).items():
            self.add_module(name, module)
        self.clip_cond_proj = nn.Linear(h, h)
        self.text_cond_proj = nn.Linear(h, h)
        self.global_cond_mlp = MLP(h, h * 4)
        # each Synchformer segment yields 8 feature frames
        self.sync_pos_emb = nn.Parameter(torch.zeros(1, 1, cfg.sync_tokens_per_segment, cfg.sync_dim))
        self.final_layer = FinalBlock(h, cfg.latent_dim)
        self.t_embed = _time_embedder(cfg)
        # MF-MJT: a second embedder for Δ = end - start, added to the global condition
        self.dt_embed = _time_embedder(cfg)
        joint = cfg.joint_depth
        self.joint_blocks = nn.ModuleList([
            JointBlock(h, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, pre_only=(i == joint - 1))
            for i in range(joint)])
        self.fused_blocks = nn.ModuleList([
            MMDitSingleBlock(h, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, kernel_size=3)
            for _ in range(cfg.fused_depth)])
        # frozen "parameters" kept as MMAudio stores them, so official state dicts load strictly
        self.latent_mean = nn.Parameter(torch.zeros(1, 1, cfg.latent_dim), requires_grad=False)
        self.latent_std = nn.Parameter(torch.ones(1, 1, cfg.latent_dim), requires_grad=False)
        self.empty_string_feat = nn.Parameter(torch.zeros(cfg.text_seq_len, cfg.text_dim),
                                              requires_grad=False)
        self.empty_clip_feat = nn.Parameter(torch.zeros(1, cfg.clip_dim))
        self.empty_sync_feat = nn.Parameter(torch.zeros(1, cfg.sync_dim))
        self.initialize_weights()

    # ------------------------------------------------------------------ initialisation
    def initialize_weights(self) -> None:
        """MMAudio's initialisation (DiT), plus a zero output layer for the Δ embedder so that a
        flow-matching network is reproduced exactly at any Δ (function-preserving start)."""
        if self.latent_mean.is_meta:
            return
        self.apply(xavier_linear_init)
        _init_time_embedder(self.t_embed, zero_output=False)
        _init_time_embedder(self.dt_embed, zero_output=True)
        adaln = [b.adaLN_modulation[-1] for jb in self.joint_blocks
                 for b in (jb.latent_block, jb.clip_block, jb.text_block)]
        adaln += [b.adaLN_modulation[-1] for b in self.fused_blocks]
        adaln += [self.final_layer.adaLN_modulation[-1], self.final_layer.conv]
        for layer in adaln:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for p in (self.sync_pos_emb, self.empty_clip_feat, self.empty_sync_feat):
            nn.init.zeros_(p)

    # ------------------------------------------------------------------ normalisation
    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        """VAE latent -> network space (not in place, unlike the reference)."""
        return (latent - self.latent_mean) / self.latent_std

    def unnormalize(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.latent_std + self.latent_mean

    # ------------------------------------------------------------------ empty features
    def empty_clip(self, batch: int, length: int) -> torch.Tensor:
        return self.empty_clip_feat.unsqueeze(0).expand(batch, length, -1)

    def empty_sync(self, batch: int, length: int) -> torch.Tensor:
        return self.empty_sync_feat.unsqueeze(0).expand(batch, length, -1)

    def empty_text(self, batch: int) -> torch.Tensor:
        return self.empty_string_feat.unsqueeze(0).expand(batch, -1, -1)

    def empty_conditions(self, batch: int, *, clip_len: int, sync_len: int,
                         negative_text_f: torch.Tensor | None = None) -> Conditions:
        """Unconditional branch for CFG; a negative prompt replaces the empty text."""
        text = self.empty_text(1) if negative_text_f is None else negative_text_f
        if text.shape[0] not in (1, batch):
            raise ValueError(f"negative text features have batch {text.shape[0]}, expected 1 or "
                             f"{batch}")
        if text.shape[0] == batch and batch > 1:
            return self.preprocess_conditions(self.empty_clip(batch, clip_len),
                                              self.empty_sync(batch, sync_len), text)
        empty = self.preprocess_conditions(self.empty_clip(1, clip_len),
                                           self.empty_sync(1, sync_len), text)
        return empty.expand(batch)

    # ------------------------------------------------------------------ conditions
    def preprocess_conditions(self, clip_f: torch.Tensor, sync_f: torch.Tensor,
                              text_f: torch.Tensor) -> Conditions:
        """Project the features once; reused at every sampling step.
        clip_f (B, N_clip, clip_dim), sync_f (B, N_sync, sync_dim), text_f (B, N_text, text_dim)."""
        self._check_features(clip_f, sync_f, text_f)
        cfg = self.config
        batch, sync_len = sync_f.shape[0], sync_f.shape[1]
        per_segment = cfg.sync_tokens_per_segment
        sync = sync_f.view(batch, sync_len // per_segment, per_segment, -1) + self.sync_pos_emb
        sync = self.sync_input_proj(sync.flatten(1, 2))  # (B, N_sync, D)
        clip = self.clip_input_proj(clip_f)  # (B, N_clip, D)
        text = self.text_input_proj(text_f)  # (B, N_text, D)
        return Conditions(clip_f=clip, sync_f=sync, text_f=text,
                          clip_f_c=self.clip_cond_proj(clip.mean(dim=1)),
                          text_f_c=self.text_cond_proj(text.mean(dim=1)), sync_len=sync_len)

    # ------------------------------------------------------------------ prediction
    def predict(self, latent: torch.Tensor, t, dt, conditions: Conditions, *,
                check: bool = True) -> torch.Tensor:
        """Average velocity u(latent, t, t + dt): (B, N, latent_dim).

        t, dt: floats or tensors of shape () or (B,). check=False skips input validation (used
        inside torch.func transforms, where data-dependent checks do not belong).
        """
        batch, tokens = latent.shape[0], latent.shape[1]
        t = self._batch_time(t, batch, latent)
        dt = self._batch_time(dt, batch, latent)
        if check:
            self._check_predict(latent, t, dt, conditions)

        cfg = self.config
        latent_rot = rope_rotations(tokens, cfg.head_dim, device=latent.device)
        clip_rot = rope_rotations(conditions.clip_len, cfg.head_dim, device=latent.device,
                                  freq_scaling=tokens / conditions.clip_len)
        # per-token condition: sync features upsampled to the audio length
        sync_c = F.interpolate(conditions.sync_f.transpose(1, 2), size=tokens,
                               mode="nearest-exact").transpose(1, 2)  # (B, N, D)

        x = self.audio_input_proj(latent)  # (B, N, D)
        global_c = self.global_cond_mlp(conditions.clip_f_c + conditions.text_f_c)  # (B, D)
        time_c = self.t_embed(t) + self.dt_embed(dt)  # (B, D)
        global_c = time_c.unsqueeze(1) + global_c.unsqueeze(1)  # (B, 1, D)
        extended_c = global_c + sync_c  # (B, N, D)

        clip_f, text_f = conditions.clip_f, conditions.text_f
        for block in self.joint_blocks:
            x, clip_f, text_f = block(x, clip_f, text_f, global_c, extended_c, latent_rot, clip_rot)
        for block in self.fused_blocks:
            x = block(x, extended_c, latent_rot)
        # MMAudio modulates the final layer with the global condition (its issue #55); kept for
        # fidelity with official weights.
        return self.final_layer(x, global_c)

    def forward(self, latent: torch.Tensor, clip_f: torch.Tensor, sync_f: torch.Tensor,
                text_f: torch.Tensor, t, dt) -> torch.Tensor:
        return self.predict(latent, t, dt, self.preprocess_conditions(clip_f, sync_f, text_f))

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _batch_time(value, batch: int, like: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        if value.ndim == 0 or value.shape == (1,):
            return value.reshape(1).expand(batch)
        if value.shape != (batch,):
            raise ValueError(f"time must be a scalar or have shape ({batch},), got "
                             f"{tuple(value.shape)}")
        return value

    def _check_features(self, clip_f, sync_f, text_f) -> None:
        cfg = self.config
        for name, f, dim in (("clip_f", clip_f, cfg.clip_dim), ("sync_f", sync_f, cfg.sync_dim),
                             ("text_f", text_f, cfg.text_dim)):
            if f.ndim != 3 or f.shape[-1] != dim:
                raise ValueError(f"{name} must have shape (B, N, {dim}), got {tuple(f.shape)}")
            if not torch.isfinite(f).all():
                raise ValueError(f"{name} contains NaN or infinite values")
        if not clip_f.shape[0] == sync_f.shape[0] == text_f.shape[0]:
            raise ValueError(f"feature batch sizes differ: clip {clip_f.shape[0]}, sync "
                             f"{sync_f.shape[0]}, text {text_f.shape[0]}")
        if text_f.shape[1] != cfg.text_seq_len:
            raise ValueError(f"text_f must have {cfg.text_seq_len} tokens, got {text_f.shape[1]}")
        if sync_f.shape[1] == 0 or sync_f.shape[1] % cfg.sync_tokens_per_segment:
            raise ValueError(f"sync_f length must be a positive multiple of "
                             f"{cfg.sync_tokens_per_segment}, got {sync_f.shape[1]}")
        if clip_f.shape[1] == 0:
            raise ValueError("clip_f has no frames")

    def _check_predict(self, latent, t, dt, conditions: Conditions) -> None:
        cfg = self.config
        if latent.ndim != 3 or latent.shape[-1] != cfg.latent_dim:
            raise ValueError(f"latent must have shape (B, N, {cfg.latent_dim}), got "
                             f"{tuple(latent.shape)}")
        if latent.shape[0] != conditions.batch_size:
            raise ValueError(f"latent batch {latent.shape[0]} != conditions batch "
                             f"{conditions.batch_size}")
        if not torch.isfinite(latent).all():
            raise ValueError("latent contains NaN or infinite values")
        if not (torch.isfinite(t).all() and torch.isfinite(dt).all()):
            raise ValueError("t and dt must be finite")
        if (dt < 0).any():
            raise ValueError(f"dt must be >= 0 (dt = end - start), got min {dt.min().item():g}")
        if (t < 0).any() or (t + dt > 1 + 1e-5).any():
            raise ValueError(f"need 0 <= t and t + dt <= 1, got t in [{t.min().item():g}, "
                             f"{t.max().item():g}], t + dt up to {(t + dt).max().item():g}")
        clip_ok, sync_ok, duration = cfg.expected_lengths(latent.shape[1])
        for name, got, ok in (("clip", conditions.clip_len, clip_ok),
                              ("sync", conditions.sync_len, sync_ok)):
            if got not in ok:
                want = f"{ok.start}" if len(ok) == 1 else f"{ok.start}-{ok.stop - 1}"
                raise ValueError(f"{name} features have {got} tokens, but a latent of "
                                 f"{latent.shape[1]} tokens ({duration:.3f} s) expects {want}")


def parameter_count(module: nn.Module, *, exclude_prefix: str | None = None) -> int:
    return sum(p.numel() for name, p in module.named_parameters()
               if exclude_prefix is None or not name.startswith(exclude_prefix))


__all__ = ["MFMJT", "Conditions", "LEGACY_KEYS", "DELTA_EMBEDDER_PREFIX", "parameter_count"]
