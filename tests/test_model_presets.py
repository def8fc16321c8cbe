"""Presets match MMAudio's published sizes and state-dict layout (MODEL.md §1)."""
import pytest
import torch

from engine.model import DELTA_EMBEDDER_PREFIX, build_network, parameter_count

# MODEL.md §1, counted over MMAudio's parameters (frozen latent stats and empty features included)
MMAUDIO_PARAMS = {
    "small_16k": 157_283_644,
    "small_44k": 157_409_144,
    "medium_44k": 621_805_944,
    "large_44k": 1_030_002_168,
    "large_44k_v2": 1_030_575_608,
}


@pytest.mark.parametrize("preset", sorted(MMAUDIO_PARAMS))
def test_parameter_count_matches_mmaudio(preset):
    net = build_network(preset, device="meta")
    assert parameter_count(net, exclude_prefix=DELTA_EMBEDDER_PREFIX) == MMAUDIO_PARAMS[preset]
    # the Δ embedder is a second time embedder of the same shape as t_embed
    t_params = sum(p.numel() for p in net.t_embed.parameters())
    assert parameter_count(net) - MMAUDIO_PARAMS[preset] == t_params


@pytest.mark.parametrize("preset,key,shape", [
    ("small_16k", "audio_input_proj.0.weight", (448, 20, 7)),
    ("small_16k", "audio_input_proj.2.w1.weight", (1280, 448, 7)),
    ("small_16k", "clip_input_proj.1.w2.weight", (448, 1280, 3)),
    ("small_16k", "text_input_proj.1.w3.weight", (1280, 448)),
    ("small_16k", "sync_input_proj.0.weight", (448, 768, 7)),
    ("small_16k", "sync_pos_emb", (1, 1, 8, 768)),
    ("small_16k", "t_embed.mlp.0.weight", (448, 256)),
    ("small_16k", "joint_blocks.0.latent_block.attn.qkv.weight", (1344, 448)),
    ("small_16k", "joint_blocks.0.text_block.linear1.weight", (448, 448)),
    ("small_16k", "joint_blocks.0.clip_block.linear1.weight", (448, 448, 3)),
    ("small_16k", "joint_blocks.3.clip_block.adaLN_modulation.1.weight", (896, 448)),
    ("small_16k", "joint_blocks.3.latent_block.adaLN_modulation.1.weight", (2688, 448)),
    ("small_16k", "fused_blocks.7.attn.k_norm.weight", (64,)),
    ("small_16k", "final_layer.conv.weight", (20, 448, 7)),
    ("small_16k", "latent_mean", (1, 1, 20)),
    ("small_16k", "empty_string_feat", (77, 1024)),
    ("small_16k", "empty_clip_feat", (1, 1024)),
    ("small_16k", "empty_sync_feat", (1, 768)),
    ("medium_44k", "fused_blocks.0.ffn.w1.weight", (2560, 896, 3)),
    ("large_44k_v2", "clip_input_proj.2.w1.weight", (2560, 896, 3)),
    ("large_44k_v2", "text_input_proj.2.w1.weight", (2560, 896)),
    ("large_44k_v2", "t_embed.mlp.0.weight", (896, 896)),
    ("large_44k_v2", "dt_embed.mlp.0.weight", (896, 896)),
])
def test_official_layout_names_and_shapes(preset, key, shape):
    state = build_network(preset, device="meta").state_dict()
    assert tuple(state[key].shape) == shape


def test_pre_only_streams_have_no_post_attention_layers():
    state = build_network("small_16k", device="meta").state_dict()
    assert "joint_blocks.3.clip_block.linear1.weight" not in state
    assert "joint_blocks.3.text_block.ffn.w1.weight" not in state
    assert "joint_blocks.2.clip_block.linear1.weight" in state
    assert not any(k.endswith("freqs") or k.endswith("_rot") for k in state)  # no legacy keys


def test_official_state_dict_loads_strictly_after_adding_delta_keys():
    source = build_network("tiny")
    official = {k: v.clone() for k, v in source.state_dict().items()
                if not k.startswith(DELTA_EMBEDDER_PREFIX)}
    target = build_network("tiny")
    with pytest.raises(RuntimeError, match="dt_embed"):
        target.load_state_dict(official, strict=True)
    official.update({k: v for k, v in target.state_dict().items()
                     if k.startswith(DELTA_EMBEDDER_PREFIX)})
    target.load_state_dict(official, strict=True)
    assert torch.equal(target.fused_blocks[0].attn.qkv.weight, source.fused_blocks[0].attn.qkv.weight)


def test_delta_embedder_output_layer_is_zero_initialised():
    net = build_network("small_16k")
    assert torch.count_nonzero(net.dt_embed.mlp[2].weight) == 0
    assert torch.count_nonzero(net.dt_embed.mlp[2].bias) == 0
    assert torch.count_nonzero(net.dt_embed.mlp[0].weight) > 0


def test_unknown_preset_and_bad_override_are_clear_errors():
    with pytest.raises(ValueError, match="unknown network preset 'huge'"):
        build_network("huge")
    with pytest.raises(ValueError, match="bad override"):
        build_network("tiny", no_such_field=3)
