"""Samplers and guidance as pure functions (paper §2.2-2.3; MODEL.md §2-3).

Engine time convention: t = 0 noise, t = 1 data. A velocity function has the signature
`velocity(x, t, dt) -> u`, the average velocity from t to t + dt (dt = 0: instantaneous). Samplers
never see the network: `guided_velocity` turns a network plus conditions into such a function.

MeanFlow step (paper eq. 6 in engine time): x_e = x_s + (e - s) * u(x_s, s, e - s).
One step is the grid [0, 1]: x_1 = x_0 + u(x_0, 0, 1).
"""
from __future__ import annotations

from typing import Callable, Literal, Optional, Sequence

import torch

from engine.cancel import Cancelled

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
GuidanceMode = Literal["none", "standard", "scaled"]

GUIDANCE_MODES = ("none", "standard", "scaled")


def time_grid(steps: int, *, start: float = 0.0, end: float = 1.0) -> torch.Tensor:
    """Uniform grid of `steps` intervals from start to end (fp64, exact end points)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(start, end, steps + 1, dtype=torch.float64)


def draw_noise(shape: Sequence[int], generator: torch.Generator, *,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the CPU, so a seed gives the same take on any device."""
    if generator.device.type != "cpu":
        raise ValueError(f"the noise generator must live on the CPU, got {generator.device}")
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device, dtype)


def _check_grid(times: torch.Tensor) -> list[float]:
    grid = [float(v) for v in torch.as_tensor(times, dtype=torch.float64).flatten()]
    if len(grid) < 2:
        raise ValueError(f"a time grid needs at least two points, got {grid}")
    if any(b < a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"time grid must be non-decreasing (t = 0 noise, t = 1 data), got {grid}")
    if grid[0] < 0 or grid[-1] > 1:
        raise ValueError(f"time grid must lie in [0, 1], got {grid[0]}..{grid[-1]}")
    return grid


def _integrate(velocity: VelocityFn, x: torch.Tensor, times, *, average: bool,
               progress: Optional[ProgressFn], cancel: Optional[CancelFn]) -> torch.Tensor:
    grid = _check_grid(times)
    total = len(grid) - 1
    for i, (start, end) in enumerate(zip(grid, grid[1:])):
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled before step {i + 1} of {total}")
        step = end - start
        if step == 0:
            continue  # a zero-length step leaves x unchanged
        t = torch.full((x.shape[0],), start, dtype=x.dtype, device=x.device)
        dt = torch.full_like(t, step if average else 0.0)
        x = x + step * velocity(x, t, dt)
        if progress is not None:
            progress(i + 1, total)
    return x


def meanflow_sample(velocity: VelocityFn, noise: torch.Tensor, times=(0.0, 1.0), *,
                    progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelFn] = None) -> torch.Tensor:
    """MeanFlow sampling over a time grid: x_e = x_s + (e - s) u(x_s, s, e - s) (paper eq. 6)."""
    return _integrate(velocity, noise, times, average=True, progress=progress, cancel=cancel)


def euler_sample(velocity: VelocityFn, noise: torch.Tensor, times, *,
                 progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> torch.Tensor:
    """Flow-matching Euler integration with the instantaneous velocity u(x, t, 0) (paper eq. 2),
    for Δ = 0 checkpoints such as imported MMAudio networks."""
    return _integrate(velocity, noise, times, average=False, progress=progress, cancel=cancel)


def guidance_scale(u_cond: torch.Tensor, u_uncond: torch.Tensor, *,
                   eps: float = 1e-8) -> torch.Tensor:
    """s = <u_c, u_u> / ||u_u||^2 per sample over all latent elements, in fp32 (paper eq. 9)."""
    c = u_cond.float().flatten(1)
    u = u_uncond.float().flatten(1)
    s = (c * u).sum(dim=1) / (u.pow(2).sum(dim=1) + eps)
    return s.view(-1, *([1] * (u_cond.ndim - 1)))


def combine_guidance(u_cond: torch.Tensor, u_uncond: torch.Tensor, omega: float,
                     mode: GuidanceMode) -> torch.Tensor:
    """Standard CFG (eq. 7): w u_c + (1 - w) u_u. CFG-scaled (eq. 8): w u_c + (1 - w) s u_u."""
    if mode == "none":
        return u_cond
    if mode == "standard":
        return omega * u_cond + (1 - omega) * u_uncond
    if mode == "scaled":
        s = guidance_scale(u_cond, u_uncond)
        return (omega * u_cond.float() + (1 - omega) * s * u_uncond.float()).to(u_cond.dtype)
    raise ValueError(f"unknown guidance mode {mode!r}; choose one of {GUIDANCE_MODES}")


def guided_velocity(network, conditions, empty_conditions, *, omega: float,
                    mode: GuidanceMode = "scaled", batched: bool = True) -> VelocityFn:
    """A velocity function for `network.predict` with classifier-free guidance.

    omega == 1 or mode 'none' runs one conditional pass per step. Otherwise the conditional and
    unconditional passes run in one batched forward (batched=False: two forwards, MMAudio's way,
    kept for benchmarks). `empty_conditions` carries the negative prompt, if any.
    """
    if mode not in GUIDANCE_MODES:
        raise ValueError(f"unknown guidance mode {mode!r}; choose one of {GUIDANCE_MODES}")
    if omega != omega or omega < 0:
        raise ValueError(f"guidance strength must be >= 0, got {omega}")
    if mode == "none" or omega == 1.0:
        return lambda x, t, dt: network.predict(x, t, dt, conditions)
    if not batched:
        def two_passes(x, t, dt):
            u_c = network.predict(x, t, dt, conditions)
            u_u = network.predict(x, t, dt, empty_conditions)
            return combine_guidance(u_c, u_u, omega, mode)
        return two_passes
    both = conditions.cat(empty_conditions)

    def one_pass(x, t, dt):
        u = network.predict(torch.cat([x, x]), torch.cat([t, t]), torch.cat([dt, dt]), both)
        u_c, u_u = u.chunk(2)
        return combine_guidance(u_c, u_u, omega, mode)
    return one_pass
