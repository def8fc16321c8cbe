"""Sampler and guidance contracts (paper eq. 6-9; MODEL.md §3)."""
import math

import pytest
import torch

from engine.sampling import (Cancelled, combine_guidance, draw_noise, euler_sample,
                             guidance_scale, guided_velocity, meanflow_sample, time_grid)
from tests.conftest import features

LAMBDA = 0.7


def exact_average_velocity(x, t, dt):
    """Field v(x) = λ x; its exact average velocity over [t, t + dt] from x_t."""
    dt = dt.view(-1, *([1] * (x.ndim - 1)))
    factor = torch.where(dt > 0, torch.expm1(LAMBDA * dt) / dt.clamp_min(1e-30),
                         torch.full_like(dt, LAMBDA))
    return x * factor


def test_one_step_matches_closed_form_and_euler_does_not():
    x0 = torch.randn(4, 5, 3, dtype=torch.float64)
    one_step = meanflow_sample(exact_average_velocity, x0, (0.0, 1.0))
    assert torch.allclose(one_step, x0 * math.exp(LAMBDA), rtol=1e-12)
    # any grid gives the same exact answer with the exact average velocity
    assert torch.allclose(meanflow_sample(exact_average_velocity, x0, time_grid(7)), one_step,
                          rtol=1e-12)
    # one Euler step only sees the instantaneous velocity: x0 (1 + λ)
    assert torch.allclose(euler_sample(exact_average_velocity, x0, (0.0, 1.0)), x0 * (1 + LAMBDA))
    many = euler_sample(exact_average_velocity, x0, time_grid(400))
    assert torch.allclose(many, one_step, rtol=2e-3)


def test_zero_length_step_leaves_x_unchanged():
    x0 = torch.randn(2, 6, 3)
    calls = []

    def velocity(x, t, dt):
        calls.append(float(dt[0]))
        return torch.ones_like(x)

    out = meanflow_sample(velocity, x0, (0.3, 0.3))
    assert torch.equal(out, x0) and calls == []
    out = meanflow_sample(velocity, x0, (0.0, 0.5, 0.5, 1.0))
    assert torch.allclose(out, x0 + 1.0) and calls == [0.5, 0.5]


def test_bad_grids_are_rejected():
    x0 = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        meanflow_sample(exact_average_velocity, x0, (1.0, 0.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        meanflow_sample(exact_average_velocity, x0, (0.0, 1.5))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        time_grid(0)


def test_progress_and_cancel_between_steps():
    x0 = torch.zeros(1, 2)
    seen = []
    meanflow_sample(exact_average_velocity, x0, time_grid(4), progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    state = {"steps": 0}

    def velocity(x, t, dt):
        state["steps"] += 1
        return x

    with pytest.raises(Cancelled, match="before step 3 of 4"):
        meanflow_sample(velocity, x0, time_grid(4), cancel=lambda: state["steps"] >= 2)
    assert state["steps"] == 2


def test_cfg_scaled_equals_conditional_when_predictions_coincide():
    u = torch.randn(3, 10, 4)
    for omega in (0.5, 1.5, 4.5):
        assert torch.allclose(combine_guidance(u, u.clone(), omega, "scaled"), u, atol=1e-6)
        assert torch.allclose(combine_guidance(u, u.clone(), omega, "standard"), u, atol=1e-6)


def test_cfg_scaled_differs_from_standard_exactly_as_eq_8_9():
    gen = torch.Generator().manual_seed(3)
    u_c, u_u = torch.randn(3, 10, 4, generator=gen), torch.randn(3, 10, 4, generator=gen)
    omega = 1.5
    standard = combine_guidance(u_c, u_u, omega, "standard")
    scaled = combine_guidance(u_c, u_u, omega, "scaled")
    for b in range(3):
        s = float((u_c[b] * u_u[b]).sum() / (u_u[b] * u_u[b]).sum())  # per sample (eq. 9)
        assert torch.allclose(standard[b], omega * u_c[b] + (1 - omega) * u_u[b])
        assert torch.allclose(scaled[b], omega * u_c[b] + (1 - omega) * s * u_u[b], atol=1e-6)
        assert torch.allclose(scaled[b] - standard[b], (1 - omega) * (s - 1) * u_u[b], atol=1e-6)
    assert not torch.allclose(scaled, standard)


def test_guidance_scale_is_fp32_and_epsilon_safe():
    u_c = torch.randn(2, 5, 3, dtype=torch.bfloat16)
    zero = torch.zeros(2, 5, 3, dtype=torch.bfloat16)
    s = guidance_scale(u_c, zero)
    assert s.dtype == torch.float32 and torch.equal(s, torch.zeros_like(s))
    out = combine_guidance(u_c, zero, 2.0, "scaled")
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    with pytest.raises(ValueError, match="unknown guidance mode"):
        combine_guidance(u_c, zero, 2.0, "weird")


class CountingNetwork:
    def __init__(self, network):
        self.network, self.calls, self.batches = network, 0, []

    def predict(self, x, t, dt, cond):
        self.calls += 1
        self.batches.append(x.shape[0])
        return self.network.predict(x, t, dt, cond)


def _conditions(tiny, duration=1.0, batch=2):
    f = features(tiny, duration, batch=batch)
    lengths = tiny.config.lengths(duration)
    cond = tiny.preprocess_conditions(f["clip_f"], f["sync_f"], f["text_f"])
    empty = tiny.empty_conditions(batch, clip_len=lengths.clip, sync_len=lengths.sync)
    return f, cond, empty


def test_network_calls_per_step(tiny):
    f, cond, empty = _conditions(tiny)
    with torch.no_grad():
        for omega, mode, batched, calls, batch in ((1.0, "scaled", True, 1, 2),
                                                   (2.0, "none", True, 1, 2),
                                                   (1.5, "scaled", True, 1, 4),
                                                   (1.5, "standard", False, 2, 2)):
            counter = CountingNetwork(tiny)
            velocity = guided_velocity(counter, cond, empty, omega=omega, mode=mode, batched=batched)
            meanflow_sample(velocity, f["latent"], time_grid(3))
            assert counter.calls == 3 * calls and set(counter.batches) == {batch}


def test_batched_and_unbatched_cfg_agree(tiny):
    f, cond, empty = _conditions(tiny)
    with torch.no_grad():
        a = meanflow_sample(guided_velocity(tiny, cond, empty, omega=2.0, mode="scaled"),
                            f["latent"])
        b = meanflow_sample(guided_velocity(tiny, cond, empty, omega=2.0, mode="scaled",
                                            batched=False), f["latent"])
        plain = meanflow_sample(guided_velocity(tiny, cond, empty, omega=1.0), f["latent"])
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, plain, atol=1e-3)


def _generate(tiny, seed):
    f, cond, empty = _conditions(tiny)
    noise = draw_noise(f["latent"].shape, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return meanflow_sample(guided_velocity(tiny, cond, empty, omega=1.5), noise)


def test_same_seed_same_take_and_different_seeds_differ(tiny):
    a, b, c = _generate(tiny, 7), _generate(tiny, 7), _generate(tiny, 8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_noise_is_drawn_in_fp32_on_cpu_whatever_the_target_dtype():
    """A seed gives the same noise whatever dtype/device the network runs in."""
    a = draw_noise((2, 50, 8), torch.Generator().manual_seed(5))
    b = draw_noise((2, 50, 8), torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(a.double(), b)
    assert torch.equal(a, torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(5)))
