"""Training objectives in the engine time convention (t = 0 noise, t = 1 data; MODEL.md §2).

x_s = (1 - s) noise + s data, v = data - noise. For start s <= end e the average velocity obeys
u(x_s, s, e) = v + (e - s) d/ds u (paper eq. 4 with s = 1 - t, e = 1 - r, u = -u_paper), so the
MeanFlow target (paper eq. 5) is u_tgt = sg(v + (e - s) dudt) with dudt the JVP of
(x, s, e) -> u(x, s, e - s) along (v, 1, 0). Flow matching (eq. 1) is the special case e = s.

A velocity function here is `velocity(x, t, dt, cond) -> u`; `cond` is anything indexable by batch
(a tensor, a `Conditions`, or None) and is sliced along with the batch.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from engine.model import math_attention

TrainVelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Any], torch.Tensor]


def _per_sample(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return value.view(-1, *([1] * (like.ndim - 1)))


def _index(cond: Any, idx: torch.Tensor) -> Any:
    if cond is None:
        return None
    if isinstance(cond, torch.Tensor):
        return cond[idx]
    return cond.index(idx)


@dataclass(frozen=True)
class TimeSampler:
    """(start, end) pairs for the MeanFlow objective (paper §3.2).

    Paper times (r, t) are each logit-normal(mu, sigma) and sorted; a fraction `mean_ratio` has
    r != t, the rest r = t. In engine time s = 1 - t, e = 1 - r. `full_jump_ratio` replaces that
    fraction of the pairs by the one-step jump (0, 1) itself, which MODEL.md's prototype needed
    for one-step quality (off in the paper recipe).
    """

    mu: float = -2.0
    sigma: float = 2.0
    mean_ratio: float = 0.1
    full_jump_ratio: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mean_ratio", "full_jump_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    def _count(self, ratio: float, batch: int, generator: torch.Generator) -> int:
        # stochastic rounding keeps the expected fraction exact for small batches
        expected = ratio * batch
        return int(math.floor(expected + torch.rand((), generator=generator).item()))

    def sample(self, batch: int, generator: torch.Generator, *,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (s, e), each (batch,), with 0 <= s <= e <= 1. Drawn on the CPU generator."""
        logits = torch.randn(2, batch, generator=generator) * self.sigma + self.mu
        paper_t = torch.sigmoid(logits)
        r_paper, t_paper = paper_t.min(dim=0).values, paper_t.max(dim=0).values
        n_mean = self._count(self.mean_ratio, batch, generator)
        order = torch.randperm(batch, generator=generator)
        instantaneous = order[n_mean:]
        # r = t pairs use a single draw (the max of two would bias them toward noise)
        r_paper[instantaneous] = t_paper[instantaneous] = paper_t[0, instantaneous]
        n_jump = self._count(self.full_jump_ratio, n_mean, generator) if n_mean else 0
        jump = order[:n_jump]
        r_paper[jump], t_paper[jump] = 0.0, 1.0
        s, e = 1.0 - t_paper, 1.0 - r_paper
        return s.to(device), e.to(device)


@dataclass(frozen=True)
class AdaptiveWeighting:
    """MeanFlow's adaptive loss weight: loss / sg(loss + c)^p (a recipe option; MODEL.md §2)."""

    p: float = 1.0
    c: float = 1e-3

    def __call__(self, per_sample: torch.Tensor) -> torch.Tensor:
        return per_sample / (per_sample.detach() + self.c).pow(self.p)


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to backpropagate
    per_sample: torch.Tensor  # (B,) unweighted squared error, detached
    target_norm: float  # RMS of the JVP target: watch it for divergence (MODEL.md §2)
    mean_fraction: float  # fraction of the batch with e > s


def meanflow_loss(velocity: TrainVelocityFn, data: torch.Tensor, noise: torch.Tensor,
                  s: torch.Tensor, e: torch.Tensor, cond: Any = None, *,
                  weighting: Optional[AdaptiveWeighting] = None,
                  autocast_dtype: Optional[torch.dtype] = None) -> LossOutput:
    """MeanFlow loss (paper eq. 5). The JVP runs only on the part of the batch with e > s
    (elsewhere it is multiplied by zero), in fp32 and with MATH attention (forward-mode AD is not
    implemented for the fused kernels). `autocast_dtype` (e.g. bf16 on CUDA) applies to the plain
    forward only."""
    if data.shape != noise.shape:
        raise ValueError(f"data {tuple(data.shape)} and noise {tuple(noise.shape)} differ in shape")
    if (e < s).any():
        raise ValueError("every pair needs start <= end (engine time: s <= e)")
    x_s = (1 - _per_sample(s, data)) * noise + _per_sample(s, data) * data
    v = data - noise
    mean_mask = e > s
    idx_inst = (~mean_mask).nonzero().flatten()
    idx_mean = mean_mask.nonzero().flatten()
    per_sample = torch.zeros(data.shape[0], device=data.device, dtype=torch.float32)
    reduce = tuple(range(1, data.ndim))
    target_norm = 0.0

    if idx_inst.numel():
        amp = (torch.autocast(data.device.type, dtype=autocast_dtype) if autocast_dtype
               else nullcontext())
        with amp:
            u = velocity(x_s[idx_inst], s[idx_inst], torch.zeros_like(s[idx_inst]),
                         _index(cond, idx_inst))
        err = (u.float() - v[idx_inst].float()).pow(2).mean(dim=reduce)
        per_sample = per_sample.index_put((idx_inst,), err)

    if idx_mean.numel():
        cond_m = _index(cond, idx_mean)

        def average_velocity(x, start, end):
            return velocity(x, start, end - start, cond_m)

        x_m, s_m, e_m, v_m = x_s[idx_mean], s[idx_mean], e[idx_mean], v[idx_mean]
        with torch.autocast(data.device.type, enabled=False), math_attention():
            u, dudt = torch.func.jvp(average_velocity, (x_m, s_m, e_m),
                                     (v_m, torch.ones_like(s_m), torch.zeros_like(e_m)))
        target = (v_m + _per_sample(e_m - s_m, v_m) * dudt).detach()
        target_norm = target.float().pow(2).mean().sqrt().item()
        err = (u.float() - target.float()).pow(2).mean(dim=reduce)
        per_sample = per_sample.index_put((idx_mean,), err)

    weighted = weighting(per_sample) if weighting is not None else per_sample
    return LossOutput(loss=weighted.mean(), per_sample=per_sample.detach(),
                      target_norm=target_norm, mean_fraction=idx_mean.numel() / data.shape[0])


def flow_matching_loss(velocity: TrainVelocityFn, data: torch.Tensor, noise: torch.Tensor,
                       s: torch.Tensor, cond: Any = None, **kwargs) -> LossOutput:
    """Flow-matching loss (paper eq. 1): the MeanFlow loss with end = start (Δ = 0)."""
    return meanflow_loss(velocity, data, noise, s, s, cond, **kwargs)


def drop_conditions(network, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                    generator: torch.Generator, *, video_p: float = 0.1, text_p: float = 0.1,
                    joint_p: float = 0.0, has_video: Optional[torch.Tensor] = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Classifier-free-guidance dropout (paper §2.3): video (CLIP + sync together) and text are
    replaced by the network's empty features independently with probability 0.1 each. Samples
    without video (`has_video` False: audio-only library files, paper §3.1) always get empty video.
    `joint_p`: a further share of samples that lose both at once, the unconditional branch that
    CFG extrapolates from; with independent drops alone it is video_p * text_p of the data (5 %
    in the first starter recipe), too little for guidance at w > 1 to help (issue 14).
    Masks are drawn on the CPU generator for reproducibility."""
    batch = clip_f.shape[0]
    drop_video = torch.rand(batch, generator=generator) < video_p
    drop_text = torch.rand(batch, generator=generator) < text_p
    if joint_p > 0:  # drawn only when used: recipes without it keep their random stream
        joint = torch.rand(batch, generator=generator) < joint_p
        drop_video, drop_text = drop_video | joint, drop_text | joint
    drop_video = drop_video.to(clip_f.device)
    if has_video is not None:
        drop_video = drop_video | ~has_video.to(clip_f.device, torch.bool)
    drop_text = drop_text.to(text_f.device)
    mask_v, mask_t = drop_video.view(-1, 1, 1), drop_text.view(-1, 1, 1)
    clip = torch.where(mask_v, network.empty_clip(batch, clip_f.shape[1]), clip_f)
    sync = torch.where(mask_v, network.empty_sync(batch, sync_f.shape[1]), sync_f)
    text = torch.where(mask_t, network.empty_text(batch), text_f)
    return clip, sync, text


def network_velocity(network) -> TrainVelocityFn:
    """Adapter from an MFMJT network (with preprocessed `Conditions` as cond) to the objective."""
    return lambda x, t, dt, cond: network.predict(x, t, dt, cond, check=False)
