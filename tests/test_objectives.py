"""The MeanFlow objective is correct (paper eq. 4-5 in engine time; MODEL.md §2)."""
import pytest
import torch

from engine.model import build_network
from trainer.objectives import (AdaptiveWeighting, TimeSampler, drop_conditions,
                                flow_matching_loss, meanflow_loss, network_velocity)
from trainer.toy import ToySettings, evaluate_samples, one_step_samples, train_toy
from tests.conftest import features, randomize

TARGET = torch.tensor([1.5, -2.0])


def point_mass_average_velocity(x, t, dt, cond):
    """Exact average velocity when all data sit at TARGET: trajectories are straight lines to it,
    so u(x_t, t, t + dt) = (TARGET - x_t) / (1 - t) for every dt."""
    return (TARGET - x) / (1 - t)[:, None]


def test_exact_average_velocity_has_zero_meanflow_loss():
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(64, 2, generator=gen)
    data = TARGET.expand(64, 2)
    s, e = TimeSampler(mu=0.0, sigma=1.0, mean_ratio=1.0).sample(64, gen)
    s = s.clamp(max=0.95)
    e = torch.maximum(e, s)
    out = meanflow_loss(point_mass_average_velocity, data, noise, s, e)
    assert out.mean_fraction > 0.9
    assert out.per_sample.max().item() < 1e-10
    # the instantaneous velocity is the wrong answer for e > s on a curved field; on this
    # straight field a velocity that ignores x is wrong everywhere: the target catches it
    wrong = lambda x, t, dt, c: (TARGET - x) / (1 - t + dt)[:, None]  # noqa: E731
    assert meanflow_loss(wrong, data, noise, s, e).per_sample.mean().item() > 1e-2


def test_target_uses_the_jvp_with_tangent_v_1_0():
    """On a field with u(x, t, dt) = a * t * dt (no x), dudt along (v, 1, 0) is a*(dt - t), so
    the target is v + dt * a * (dt - t): check the loss equals |u - target|^2 exactly."""
    a = 3.0
    velocity = lambda x, t, dt, c: (a * t * dt)[:, None].expand_as(x)  # noqa: E731
    data, noise = torch.randn(4, 2), torch.randn(4, 2)
    s = torch.tensor([0.1, 0.2, 0.3, 0.4])
    e = torch.tensor([0.5, 0.9, 0.3, 1.0])
    out = meanflow_loss(velocity, data, noise, s, e)
    dt = e - s
    target = (data - noise) + (dt * a * (dt - s))[:, None]
    expected = ((a * s * dt)[:, None] - target).pow(2).mean(dim=1)
    assert torch.allclose(out.per_sample, expected, atol=1e-6)


def test_flow_matching_is_the_delta_zero_case():
    velocity = lambda x, t, dt, c: x * 0.5 + t[:, None]  # noqa: E731
    data, noise, s = torch.randn(8, 3), torch.randn(8, 3), torch.rand(8)
    fm = flow_matching_loss(velocity, data, noise, s)
    x_s = (1 - s[:, None]) * noise + s[:, None] * data
    expected = (velocity(x_s, s, None, None) - (data - noise)).pow(2).mean(dim=1)
    assert torch.allclose(fm.per_sample, expected) and fm.mean_fraction == 0.0


def test_time_sampler_pairs():
    gen = torch.Generator().manual_seed(0)
    s, e = TimeSampler().sample(20000, gen)
    assert ((0 <= s) & (s <= e) & (e <= 1)).all()
    assert abs((e > s).float().mean().item() - 0.1) < 0.01  # paper: 10% with r != t
    # logit-normal(-2, 2) in paper time is mostly near data: engine times near 1
    assert s.median().item() > 0.8
    s, e = TimeSampler(mean_ratio=0.5, full_jump_ratio=0.5).sample(20000, gen)
    jumps = (s == 0) & (e == 1)
    assert abs(jumps.float().mean().item() - 0.25) < 0.02
    with pytest.raises(ValueError, match="mean_ratio"):
        TimeSampler(mean_ratio=1.5)


def test_adaptive_weighting_normalises_the_loss():
    per_sample = torch.tensor([0.01, 1.0, 100.0], requires_grad=True)
    weighted = AdaptiveWeighting(p=1.0, c=1e-3)(per_sample)
    assert torch.allclose(weighted.detach(), per_sample.detach() / (per_sample.detach() + 1e-3))
    weighted.sum().backward()
    assert torch.allclose(per_sample.grad, 1 / (per_sample.detach() + 1e-3))


def test_condition_dropout_drops_video_as_a_unit(tiny):
    f = features(tiny, 1.0, batch=400)
    gen = torch.Generator().manual_seed(0)
    clip, sync, text = drop_conditions(tiny, f["clip_f"], f["sync_f"], f["text_f"], gen)
    clip_dropped = (clip == tiny.empty_clip_feat).all(dim=2).all(dim=1)
    sync_dropped = (sync == tiny.empty_sync_feat).all(dim=2).all(dim=1)
    text_dropped = (text == tiny.empty_string_feat).all(dim=2).all(dim=1)
    assert torch.equal(clip_dropped, sync_dropped)
    assert 20 < clip_dropped.sum() < 60 and 20 < text_dropped.sum() < 60  # p = 0.1 each
    assert not torch.equal(clip_dropped, text_dropped)  # independent
    kept = ~clip_dropped
    assert torch.equal(clip[kept], f["clip_f"][kept])
    no_video = torch.zeros(400, dtype=torch.bool)
    clip, sync, _ = drop_conditions(tiny, f["clip_f"], f["sync_f"], f["text_f"], gen,
                                    has_video=no_video)
    assert (clip == tiny.empty_clip_feat).all() and (sync == tiny.empty_sync_feat).all()


def test_joint_dropout_adds_samples_that_lose_both_conditions(tiny):
    """The unconditional branch CFG extrapolates from (issue 14): with joint_p the share of
    samples without video and text grows from video_p * text_p to about that plus joint_p, and
    joint_p = 0 leaves the random stream of older recipes untouched."""
    f = features(tiny, 1.0, batch=2000)

    def both_dropped(joint_p, seed=3):
        gen = torch.Generator().manual_seed(seed)
        clip, _, text = drop_conditions(tiny, f["clip_f"], f["sync_f"], f["text_f"], gen,
                                        video_p=0.1, text_p=0.5, joint_p=joint_p)
        video = (clip == tiny.empty_clip_feat).all(dim=2).all(dim=1)
        words = (text == tiny.empty_string_feat).all(dim=2).all(dim=1)
        return (video & words).float().mean().item(), gen.initial_seed(), torch.rand(1, generator=gen)
    base, _, after_base = both_dropped(0.0)
    joint, _, after_joint = both_dropped(0.1)
    assert 0.03 < base < 0.07 and 0.12 < joint < 0.17  # 5 % and 0.1 + 0.9 * 5 % = 14.5 %
    gen = torch.Generator().manual_seed(3)
    torch.rand(2000, generator=gen), torch.rand(2000, generator=gen)
    assert torch.equal(after_base, torch.rand(1, generator=gen))  # two draws only, as before
    assert not torch.equal(after_joint, after_base)


# The last joint block's clip and text streams are pre-only: only their keys and values feed the
# audio tokens, so their query norms cannot receive gradient (true of MMAudio as well).
DEAD_BY_DESIGN = {"joint_blocks.1.clip_block.attn.q_norm.weight",
                  "joint_blocks.1.text_block.attn.q_norm.weight"}


def test_gradients_reach_every_trainable_parameter():
    net = randomize(build_network("tiny"), keep_delta_zero=False).train()
    gen = torch.Generator().manual_seed(0)
    f = features(net, 1.0, batch=8)
    clip, sync, text = drop_conditions(net, f["clip_f"], f["sync_f"], f["text_f"], gen,
                                       video_p=0.5, text_p=0.5)
    cond = net.preprocess_conditions(clip, sync, text)
    s, e = TimeSampler(mean_ratio=0.5).sample(8, gen)
    out = meanflow_loss(network_velocity(net), torch.randn_like(f["latent"]), f["latent"], s, e,
                        cond, weighting=AdaptiveWeighting())
    out.loss.backward()
    starved = {n for n, p in net.named_parameters()
               if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)}
    assert starved == DEAD_BY_DESIGN
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen == {"latent_mean", "latent_std", "empty_string_feat"}
    assert 0 < out.mean_fraction < 1 and out.target_norm > 0


def test_zero_initialised_delta_embedder_learns_from_the_first_step():
    net = randomize(build_network("tiny"), keep_delta_zero=True).train()
    gen = torch.Generator().manual_seed(1)
    f = features(net, 1.0, batch=4)
    cond = net.preprocess_conditions(f["clip_f"], f["sync_f"], f["text_f"])
    s, e = TimeSampler(mean_ratio=1.0).sample(4, gen)
    meanflow_loss(network_velocity(net), torch.randn_like(f["latent"]), f["latent"], s, e,
                  cond).loss.backward()
    assert net.dt_embed.mlp[2].weight.grad.abs().sum() > 0


def test_meanflow_beats_flow_matching_in_one_step_on_the_toy():
    """MeanFlow trained the same way reaches a far lower one-step error than flow matching.
    Measured with these settings (seeds 0, 1, 2): MeanFlow 0.78 / 0.87 / 0.78, flow matching
    about 3.8 (mean distance to the nearest of 8 modes on a radius-4 ring; the target samples
    themselves score 0.19)."""
    settings = ToySettings(steps=1000, batch=256, seed=0)
    errors = {}
    for objective in ("meanflow", "flow_matching"):
        model = train_toy(objective, settings)
        samples = one_step_samples(model, objective, n=2000, seed=11)
        errors[objective] = evaluate_samples(samples, 11).mode_distance
    assert errors["meanflow"] < 1.1
    assert errors["flow_matching"] > 2.5
    assert errors["meanflow"] < 0.4 * errors["flow_matching"]


def test_autocast_applies_to_the_plain_forward_only(tiny):
    """bf16 autocast (CUDA in production; CPU autocast here) for the r = t part, fp32 JVP."""
    seen = []

    def velocity(x, t, dt, cond):
        u = tiny.predict(x, t, dt, cond, check=False)
        seen.append((bool((dt > 0).any()), u.dtype))
        return u

    f = features(tiny, 1.0, batch=6)
    cond = tiny.preprocess_conditions(f["clip_f"], f["sync_f"], f["text_f"])
    s = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    e = torch.tensor([0.1, 0.2, 0.3, 0.9, 1.0, 0.8])
    out = meanflow_loss(velocity, f["latent"], torch.randn_like(f["latent"]), s, e, cond,
                        autocast_dtype=torch.bfloat16)
    assert seen == [(False, torch.bfloat16), (True, torch.float32)]
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
