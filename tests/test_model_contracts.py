"""Behavioural contracts of the MF-MJT network (MODEL.md §1-2)."""
import threading

import pytest
import torch

from engine.model import build_network, math_attention
from engine.model.blocks import SelfAttention
from engine.model.rope import apply_rope, rope_rotations
from tests.conftest import features, randomize


def test_delta_is_ignored_at_initialisation(tiny):
    """Zero-initialised Δ embedder: predict(t, dt) == predict(t, 0) for any dt (a loaded
    flow-matching checkpoint is reproduced exactly)."""
    f = features(tiny, 2.0)
    cond = tiny.preprocess_conditions(f["clip_f"], f["sync_f"], f["text_f"])
    with torch.no_grad():
        for t in (0.0, 0.25, 0.6):
            base = tiny.predict(f["latent"], t, 0.0, cond)
            for dt in (0.1, 1.0 - t):
                assert torch.equal(tiny.predict(f["latent"], t, dt, cond), base)
    # once the Δ embedder is trained, dt matters
    with torch.no_grad():
        tiny.dt_embed.mlp[2].weight.normal_()
        assert not torch.equal(tiny.predict(f["latent"], 0.0, 1.0, cond),
                               tiny.predict(f["latent"], 0.0, 0.0, cond))


def test_forward_equals_preprocess_then_predict(tiny):
    f = features(tiny, 1.5)
    with torch.no_grad():
        direct = tiny(f["latent"], f["clip_f"], f["sync_f"], f["text_f"], 0.3, 0.2)
        cond = tiny.preprocess_conditions(f["clip_f"], f["sync_f"], f["text_f"])
        assert torch.equal(direct, tiny.predict(f["latent"], torch.tensor([0.3, 0.3]), 0.2, cond))
    assert direct.shape == f["latent"].shape


def test_variable_durations_run_concurrently_without_shared_state(tiny):
    inputs = {d: features(tiny, d, seed=int(d * 10)) for d in (1.0, 2.6, 4.0)}
    with torch.no_grad():
        expected = {d: tiny(**f, t=0.5, dt=0.5) for d, f in inputs.items()}
    results = {}

    def work(d):
        with torch.no_grad():
            for _ in range(3):
                results[d] = tiny(**inputs[d], t=0.5, dt=0.5)

    threads = [threading.Thread(target=work, args=(d,)) for d in inputs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for d in inputs:
        assert results[d].shape[1] == tiny.config.lengths(d).latent
        assert torch.equal(results[d], expected[d])


def test_qkv_channels_are_interleaved_per_head_as_h_d_j():
    """Output channel (h * D + d) * 3 + j of qkv is component j (q, k, v) of head h, dim d."""
    attn = SelfAttention(dim=8, heads=2)  # head dim 4
    with torch.no_grad():
        attn.qkv.weight.zero_()
        attn.qkv.bias.copy_(torch.arange(24, dtype=torch.float32))
        attn.q_norm.weight.fill_(1.0)
        attn.k_norm.weight.fill_(1.0)
    q, k, v = attn.pre_attention(torch.zeros(1, 1, 8), rot=None)
    expected_v = torch.tensor([[(h * 4 + d) * 3 + 2 for d in range(4)] for h in range(2)],
                              dtype=torch.float32)
    assert torch.equal(v[0, :, 0], expected_v)
    raw_q = torch.tensor([(1 * 4 + d) * 3 + 0 for d in range(4)], dtype=torch.float32)
    assert torch.allclose(q[0, 1, 0], raw_q / raw_q.pow(2).mean().add(1e-6).sqrt(), atol=1e-3)


def test_rope_is_relative_and_aligns_clip_with_audio_time():
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 64, generator=gen), torch.randn(1, 1, 1, 64, generator=gen)
    rot = rope_rotations(40, 64)

    def score(m, n):
        return (apply_rope(q, rot[:, m:m + 1]) * apply_rope(k, rot[:, n:n + 1])).sum()

    assert torch.allclose(score(7, 3), score(30, 26), atol=1e-4)
    assert not torch.allclose(score(7, 3), score(7, 5), atol=1e-3)
    # CLIP frame i at 8 fps and audio token at the same wall-clock time share a phase
    latent_len, clip_len = 250, 64
    clip_rot = rope_rotations(clip_len, 64, freq_scaling=latent_len / clip_len)
    pos = 16  # 2.0 s
    audio_pos = pos * latent_len / clip_len  # 62.5 tokens
    freqs = 1.0 / (10000 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64))
    assert torch.allclose(clip_rot[0, pos, :, 1, 0], torch.sin(audio_pos * freqs), atol=1e-5)


def test_jvp_through_tiny_network_needs_math_attention(tiny):
    randomize(tiny, keep_delta_zero=False)  # so the tangent through Δ = e - s matters too
    f = features(tiny, 1.0)
    cond = tiny.preprocess_conditions(f["clip_f"], f["sync_f"], f["text_f"])
    x, s, e = f["latent"], torch.full((2,), 0.2), torch.full((2,), 0.9)
    tangents = (torch.randn_like(x), torch.ones_like(s), torch.zeros_like(e))

    def fn(x, s, e):
        return tiny.predict(x, s, e - s, cond, check=False)

    with pytest.raises(NotImplementedError, match="forward AD"):
        torch.func.jvp(fn, (x, s, e), tangents)
    with math_attention():
        u, dudt = torch.func.jvp(fn, (x, s, e), tangents)
    assert torch.isfinite(dudt).all() and dudt.abs().sum() > 0
    # the JVP agrees with a central finite difference along the same direction (in fp64)
    tiny.double()
    cond = tiny.preprocess_conditions(*(f[k].double() for k in ("clip_f", "sync_f", "text_f")))
    x, s, e, direction = x.double(), s.double(), e.double(), tangents[0].double()
    with math_attention():
        _, dudt = torch.func.jvp(fn, (x, s, e), (direction, torch.ones_like(s), torch.zeros_like(e)))
    h = 1e-4  # small enough not to straddle SELU's kink at 0; RoPE / time embeddings stay fp32
    with torch.no_grad():
        fd = (fn(x + h * direction, s + h, e) - fn(x - h * direction, s - h, e)) / (2 * h)
    assert torch.allclose(dudt, fd, atol=2e-4, rtol=1e-4)


def test_wrong_feature_lengths_name_expected_and_got(tiny):
    f = features(tiny, 2.0)  # 63 latent tokens, 16 clip frames, 40 sync tokens
    bad_clip = torch.randn(2, 20, tiny.config.clip_dim)
    with pytest.raises(ValueError, match=r"clip features have 20 tokens.*63 tokens \(2.016 s\) expects 15-16"):
        tiny(f["latent"], bad_clip, f["sync_f"], f["text_f"], 0.0, 1.0)
    with pytest.raises(ValueError, match=r"sync features have 56 tokens.*expects 40"):
        tiny(f["latent"], f["clip_f"], torch.randn(2, 56, 16), f["text_f"], 0.0, 1.0)
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny(f["latent"], f["clip_f"], torch.randn(2, 30, 16), f["text_f"], 0.0, 1.0)
    with pytest.raises(ValueError, match=r"text_f must have 8 tokens, got 77"):
        tiny(f["latent"], f["clip_f"], f["sync_f"], torch.randn(2, 77, 32), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"clip_f must have shape \(B, N, 32\), got \(2, 16, 31\)"):
        tiny(f["latent"], torch.randn(2, 16, 31), f["sync_f"], f["text_f"], 0.0, 1.0)


def test_nan_and_bad_times_are_rejected(tiny):
    f = features(tiny, 1.0)
    nan_latent = f["latent"].clone()
    nan_latent[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="latent contains NaN"):
        tiny(nan_latent, f["clip_f"], f["sync_f"], f["text_f"], 0.0, 1.0)
    nan_clip = f["clip_f"].clone()
    nan_clip[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="clip_f contains NaN"):
        tiny(f["latent"], nan_clip, f["sync_f"], f["text_f"], 0.0, 1.0)
    with pytest.raises(ValueError, match=r"dt must be >= 0.*-0.1"):
        tiny(**f, t=0.5, dt=-0.1)
    with pytest.raises(ValueError, match=r"t \+ dt <= 1"):
        tiny(**f, t=0.5, dt=0.7)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        tiny(**f, t=torch.zeros(3), dt=0.0)


def test_duration_lengths_follow_mmaudio_formulas():
    cfg16 = build_network("small_16k", device="meta").config
    cfg44 = build_network("small_44k", device="meta").config
    assert (cfg16.lengths(8.0).latent, cfg16.lengths(8.0).clip, cfg16.lengths(8.0).sync) == (250, 64, 192)
    assert (cfg44.lengths(8.0).latent, cfg44.lengths(8.0).clip, cfg44.lengths(8.0).sync) == (345, 64, 192)
    assert cfg44.lengths(5.0).latent == 216 and cfg44.lengths(5.0).sync == 112
    with pytest.raises(ValueError, match="at least 0.64 s"):
        cfg16.lengths(0.5)


def test_empty_conditions_use_negative_prompt(tiny):
    lengths = tiny.config.lengths(1.0)
    neg = torch.randn(1, 8, 32)
    plain = tiny.empty_conditions(3, clip_len=lengths.clip, sync_len=lengths.sync)
    negative = tiny.empty_conditions(3, clip_len=lengths.clip, sync_len=lengths.sync,
                                     negative_text_f=neg)
    assert plain.batch_size == negative.batch_size == 3
    assert torch.equal(plain.clip_f, negative.clip_f)
    assert not torch.allclose(plain.text_f, negative.text_f)
    direct = tiny.preprocess_conditions(tiny.empty_clip(1, lengths.clip),
                                        tiny.empty_sync(1, lengths.sync), neg)
    assert torch.equal(negative.text_f_c[2], direct.text_f_c[0])


def test_randomized_helper_keeps_delta_zero():
    net = randomize(build_network("tiny"))
    assert torch.count_nonzero(net.dt_embed.mlp[2].weight) == 0
