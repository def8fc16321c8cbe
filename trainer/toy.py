"""A 2-D toy problem that proves the MeanFlow objective end to end on a CPU in seconds.

Target: 8 Gaussians on a ring. A small MLP learns the average velocity u(x, t, dt) with the
MeanFlow objective, and a twin learns the instantaneous velocity with flow matching under the
same budget. Sampled in ONE step, flow matching collapses toward the mean of the modes (the one
Euler step follows E[data - noise | x_0]); MeanFlow lands on the modes (paper Fig. 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from engine.sampling import euler_sample, meanflow_sample
from trainer.objectives import AdaptiveWeighting, TimeSampler, flow_matching_loss, meanflow_loss

RING_RADIUS = 4.0
RING_MODES = 8
RING_STD = 0.15


def ring_modes() -> torch.Tensor:
    angles = torch.arange(RING_MODES, dtype=torch.float32) * (2 * math.pi / RING_MODES)
    return RING_RADIUS * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def sample_target(n: int, generator: torch.Generator) -> torch.Tensor:
    modes = ring_modes()
    which = torch.randint(0, RING_MODES, (n,), generator=generator)
    return modes[which] + RING_STD * torch.randn(n, 2, generator=generator)


class ToyVelocityNet(nn.Module):
    """MLP u(x, t, dt) with low-frequency sinusoidal time embeddings (MMAudio-like: t in [0, 1])."""

    def __init__(self, width: int = 128, frequencies: int = 4):
        super().__init__()
        # low frequencies only: high ones made the JVP target noisy (MODEL.md §2, lessons)
        freqs = torch.arange(1, frequencies + 1, dtype=torch.float32) * (math.pi / 2)
        self.register_buffer("freqs", freqs)
        self.net = nn.Sequential(nn.Linear(4 + 4 * frequencies, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def embed(self, t: torch.Tensor) -> torch.Tensor:
        args = t[:, None] * self.freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        feats = [x, t[:, None], dt[:, None], self.embed(t), self.embed(dt)]
        return self.net(torch.cat(feats, dim=-1))


@dataclass(frozen=True)
class ToySettings:
    steps: int = 2000
    batch: int = 512
    lr: float = 2e-3
    seed: int = 0
    # measured on this toy: 1/sg(loss) weighting starves the large-error jump pairs (0.9 -> 2.3)
    adaptive_weighting: bool = False
    # generous r != t share for a tiny model; MODEL.md: the one-step jump must be trained
    time_sampler: TimeSampler = TimeSampler(mu=-0.4, sigma=1.0, mean_ratio=0.5,
                                            full_jump_ratio=0.2)


def train_toy(objective: str, settings: ToySettings = ToySettings(),
              progress: Optional[Callable[[int, int, float], None]] = None) -> ToyVelocityNet:
    """Train a toy velocity net with 'meanflow' or 'flow_matching' on the ring target."""
    if objective not in ("meanflow", "flow_matching"):
        raise ValueError(f"objective must be 'meanflow' or 'flow_matching', got {objective!r}")
    torch.manual_seed(settings.seed)
    model = ToyVelocityNet()
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.steps)
    velocity = lambda x, t, dt, cond: model(x, t, dt)  # noqa: E731
    weighting = AdaptiveWeighting(p=1.0, c=1e-3) if settings.adaptive_weighting else None
    for step in range(settings.steps):
        data = sample_target(settings.batch, gen)
        noise = torch.randn(settings.batch, 2, generator=gen)
        s, e = settings.time_sampler.sample(settings.batch, gen)
        if objective == "meanflow":
            out = meanflow_loss(velocity, data, noise, s, e, weighting=weighting)
        else:
            out = flow_matching_loss(velocity, data, noise, s)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, settings.steps, out.per_sample.mean().item())
    return model.eval()


@dataclass(frozen=True)
class ToyMetrics:
    mode_distance: float  # mean distance of a sample to its nearest mode centre
    sliced_wasserstein: float  # vs fresh target samples


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator,
                       projections: int = 64) -> float:
    dirs = torch.randn(projections, a.shape[1], generator=generator)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    pa, pb = (a @ dirs.T).sort(dim=0).values, (b @ dirs.T).sort(dim=0).values
    return (pa - pb).pow(2).mean().sqrt().item()


def one_step_samples(model: ToyVelocityNet, objective: str, n: int, seed: int) -> torch.Tensor:
    """ONE network evaluation from noise to data: MeanFlow jump or one Euler step."""
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    velocity = lambda x, t, dt: model(x, t, dt)  # noqa: E731
    with torch.no_grad():
        if objective == "meanflow":
            return meanflow_sample(velocity, noise, (0.0, 1.0))
        return euler_sample(velocity, noise, (0.0, 1.0))


def evaluate_samples(samples: torch.Tensor, seed: int) -> ToyMetrics:
    gen = torch.Generator().manual_seed(seed + 1)
    distance = torch.cdist(samples, ring_modes()).min(dim=1).values.mean().item()
    reference = sample_target(samples.shape[0], gen)
    return ToyMetrics(mode_distance=distance,
                      sliced_wasserstein=sliced_wasserstein(samples, reference, gen))
