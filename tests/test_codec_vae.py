"""MMAudio's 1-D magnitude-preserving VAE: official layout, weight-norm baking, shapes.
Parity with the reference on random weights is bit-exact (figures in the notes)."""
import pytest
import torch

from engine.codec.mp_layers import MPConv1D, mp_sum
from engine.codec.vae import VAE_16K, VAE_44K, MelVAE, VAEConfig

TINY = VAEConfig(data_dim=8, embed_dim=4, hidden_dim=16)


def test_official_16k_layout():
    with torch.device("meta"):
        state = MelVAE(VAE_16K).state_dict()
    assert len(state) == 57
    expected = {
        "data_mean": (1, 80, 1), "data_std": (1, 80, 1),
        "encoder.conv_in.weight": (384, 80, 3),
        "encoder.down.0.downsample.conv1.weight": (384, 384, 1),
        "encoder.down.1.block.0.nin_shortcut.weight": (768, 384, 1),
        "encoder.down.2.block.1.conv2.weight": (1536, 1536, 3),
        "encoder.mid.attn_1.qkv.weight": (4608, 1536, 1),
        "encoder.conv_out.weight": (40, 1536, 3),
        "encoder.learnable_gain": (),
        "decoder.conv_in.weight": (1536, 20, 3),
        "decoder.up.1.upsample.conv.weight": (768, 768, 3),
        "decoder.up.0.block.2.conv1.weight": (384, 384, 3),
        "decoder.conv_out.weight": (80, 384, 3),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    with torch.device("meta"):
        assert tuple(MelVAE(VAE_44K).state_dict()["decoder.conv_out.weight"].shape) == (128, 512, 3)


def _official_state(cfg, seed=0):
    torch.manual_seed(seed)
    vae = MelVAE(cfg)
    with torch.no_grad():
        vae.data_mean.normal_()
        vae.data_std.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in vae.state_dict().items()}


def test_strict_load_bakes_weight_norm_without_changing_the_function():
    state = _official_state(TINY)
    on_the_fly = MelVAE(TINY).eval()
    on_the_fly.load_state_dict(state, strict=True)
    baked = MelVAE(TINY).eval().load_official(state)
    mel = torch.randn(2, 8, 32)
    with torch.no_grad():
        assert torch.allclose(on_the_fly.decode(torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(0))),
                              baked.decode(torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(0))),
                              atol=1e-5)
        a, b = on_the_fly.encode(mel), baked.encode(mel)
    assert torch.allclose(a.mean, b.mean, atol=1e-5)
    # baked: each output channel has unit RMS / sqrt(fan_in), i.e. unit L2 norm
    conv = baked.decoder.conv_out
    assert torch.allclose(conv.weight.flatten(1).norm(dim=1), torch.ones(8), atol=1e-3)


def test_shapes_and_decoder_only_loading():
    state = _official_state(TINY)
    vae = MelVAE(TINY).eval().load_official(state)
    posterior = vae.encode(torch.randn(3, 8, 64))
    assert posterior.mean.shape == (3, 4, 32)  # latent rate = mel rate / 2
    assert vae.decode(posterior.mean).shape == (3, 8, 64)
    decoder_only = MelVAE(TINY, with_encoder=False).eval().load_official(state)
    z = torch.randn(1, 4, 10)
    with torch.no_grad():
        assert torch.equal(decoder_only.decode(z), vae.decode(z))
    with pytest.raises(RuntimeError, match="without its encoder"):
        decoder_only.encode(torch.randn(1, 8, 20))
    state.pop("decoder.conv_in.weight")
    with pytest.raises(RuntimeError, match="decoder.conv_in.weight"):
        MelVAE(TINY).load_official(state)


def test_training_forward_keeps_weights_normalised_and_gradients_flow():
    vae = MelVAE(TINY).train()
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(7.0)
    posterior = vae.encode(torch.randn(2, 8, 16))
    recon = vae.decode(posterior.sample(torch.Generator().manual_seed(0)))
    (recon.pow(2).mean() + posterior.kl().mean()).backward()
    w = vae.decoder.conv_in.weight.detach().flatten(1)
    fan_in = w.shape[1]
    assert torch.allclose(w.norm(dim=1) / fan_in ** 0.5, torch.ones(w.shape[0]), atol=1e-3)
    assert vae.encoder.conv_in.weight.grad is not None and vae.decoder.learnable_gain.grad is not None


def test_magnitude_preservation():
    torch.manual_seed(0)
    x = torch.randn(16, 64, 256)
    conv = MPConv1D(64, 64, 3).eval()
    assert abs(conv(x).std().item() - 1.0) < 0.05
    assert abs(mp_sum(x, torch.randn_like(x), t=0.3).std().item() - 1.0) < 0.02
