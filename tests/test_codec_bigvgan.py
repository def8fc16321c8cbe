"""BigVGAN generators: official layouts, weight-norm folding, anti-aliased activations.
Parity with the reference (v1 and v2) on random weights is bit-exact (figures in the notes)."""
import pytest
import torch
from torch.nn.utils.parametrizations import weight_norm

from engine.codec.bigvgan import (BIGVGAN_V1_16K, BIGVGAN_V2_44K, BigVGANConfig, BigVGANGenerator,
                                  LowPassFilter1d, UpSample1d, fold_weight_norm, kaiser_sinc_filter)

TINY = BigVGANConfig(num_mels=8, upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4),
                     upsample_initial_channel=16, resblock_kernel_sizes=(3, 5),
                     resblock_dilations=((1, 3), (1, 3)))


def test_official_layouts_and_hops():
    with torch.device("meta"):
        v1 = BigVGANGenerator(BIGVGAN_V1_16K).state_dict()
        v2 = BigVGANGenerator(BIGVGAN_V2_44K).state_dict()
    assert BIGVGAN_V1_16K.hop == 256 and BIGVGAN_V2_44K.hop == 512  # the mel hops (MODEL.md §5)
    assert tuple(v1["conv_pre.weight"].shape) == (1536, 80, 7)
    assert tuple(v1["ups.0.0.weight"].shape) == (1536, 768, 8)
    assert tuple(v1["resblocks.0.convs1.2.weight"].shape) == (768, 768, 3)
    assert tuple(v1["resblocks.17.convs2.0.weight"].shape) == (24, 24, 11)
    assert tuple(v1["resblocks.4.activations.5.act.beta"].shape) == (384,)
    assert tuple(v1["resblocks.4.activations.5.upsample.filter"].shape) == (1, 1, 12)
    assert tuple(v1["activation_post.downsample.lowpass.filter"].shape) == (1, 1, 12)
    assert tuple(v1["conv_post.weight"].shape) == (1, 24, 7) and "conv_post.bias" in v1
    assert tuple(v2["conv_pre.weight"].shape) == (1536, 128, 7)
    assert tuple(v2["ups.0.0.weight"].shape) == (1536, 768, 16)
    assert "conv_post.bias" not in v2


def _official(state):
    """Our plain state dict as the official file stores it: legacy weight_g / weight_v."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight") and value.ndim == 3:
            stem = key[: -len(".weight")]
            out[f"{stem}.weight_v"] = value * 3.0
            out[f"{stem}.weight_g"] = value.norm(dim=(1, 2), keepdim=True)
        else:
            out[key] = value
    return out


def test_strict_load_of_weight_normed_state_reproduces_the_generator():
    torch.manual_seed(0)
    source = BigVGANGenerator(TINY).eval()
    loaded = BigVGANGenerator(TINY).eval().load_official(_official(source.state_dict()))
    mel = torch.randn(2, 8, 10)
    with torch.no_grad():
        out = loaded(mel)
        assert torch.allclose(out, source(mel), atol=1e-5)
    assert out.shape == (2, 1, 40) and out.abs().max() <= 1.0
    broken = _official(source.state_dict())
    broken.pop("conv_pre.weight_g")
    with pytest.raises(ValueError, match="conv_pre: weight norm needs both g and v"):
        BigVGANGenerator(TINY).load_official(broken)


def test_folding_matches_torch_weight_norm():
    conv = weight_norm(torch.nn.Conv1d(4, 6, 3))
    with torch.no_grad():
        conv.parametrizations.weight.original0.uniform_(0.5, 2.0)
    stem_state = {f"layer.{k}": v for k, v in conv.state_dict().items()}
    folded = fold_weight_norm(stem_state)
    assert set(folded) == {"layer.weight", "layer.bias"}
    assert torch.equal(folded["layer.weight"], conv.weight.detach())


def test_anti_aliasing_filters():
    taps = kaiser_sinc_filter(0.25, 0.3, 12)
    assert torch.allclose(taps.sum(), torch.tensor(1.0)) and torch.allclose(taps, taps.flip(-1))
    constant = torch.full((1, 3, 40), 0.7)
    up = UpSample1d()(constant)
    assert up.shape == (1, 3, 80) and torch.allclose(up, torch.full_like(up, 0.7), atol=1e-5)
    down = LowPassFilter1d()(up)
    assert down.shape == (1, 3, 40) and torch.allclose(down, constant, atol=1e-5)
