"""Synchformer visual features: official state-dict layout, segmenting, divided attention."""
import numpy as np
import pytest
import torch

from engine.features.synchformer import (STATE_PREFIX, DividedAttention, SynchformerConfig,
                                         SynchformerFeatures, layout_config)

TINY = SynchformerConfig(embed_dim=32, depth=1, num_heads=2, img_size=32, patch_size=16)


def test_official_layout_on_meta():
    with torch.device("meta"):
        model = SynchformerFeatures()
    state = model.state_dict()
    assert len(state) == 238  # the count of vfeat_extractor.* keys in the official file
    expected = {
        "vfeat_extractor.patch_embed.proj.weight": (768, 3, 16, 16),
        "vfeat_extractor.patch_embed_3d.proj.weight": (768, 3, 2, 16, 16),
        "vfeat_extractor.cls_token": (1, 1, 768),
        "vfeat_extractor.pos_embed": (1, 197, 768),
        "vfeat_extractor.temp_embed": (1, 8, 768),
        "vfeat_extractor.blocks.11.timeattn.qkv.weight": (2304, 768),
        "vfeat_extractor.blocks.0.attn.proj.bias": (768,),
        "vfeat_extractor.blocks.5.mlp.fc1.weight": (3072, 768),
        "vfeat_extractor.blocks.5.norm3.weight": (768,),
        "vfeat_extractor.norm.bias": (768,),
        "vfeat_extractor.spatial_attn_agg.cls_token": (1, 1, 768),
        "vfeat_extractor.spatial_attn_agg.self_attn.in_proj_weight": (2304, 768),
        "vfeat_extractor.spatial_attn_agg.linear2.weight": (768, 3072),
        "vfeat_extractor.spatial_attn_agg.norm2.weight": (768,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert all(k.startswith(STATE_PREFIX) for k in state)
    assert layout_config(state) == SynchformerConfig()  # the architecture read back from shapes


def test_layout_of_smaller_extractors_is_read_from_shapes():
    with torch.device("meta"):
        state = SynchformerFeatures(TINY).state_dict()
    assert layout_config(state) == SynchformerConfig(embed_dim=32, depth=1, num_heads=1,
                                                     img_size=32, patch_size=16)
    with pytest.raises(ValueError, match="not a Synchformer visual extractor"):
        layout_config({k: v for k, v in state.items() if "temp_embed" not in k})


def test_strict_load_ignores_other_modules_and_rejects_missing_keys():
    torch.manual_seed(0)
    source = SynchformerFeatures(TINY)
    official = {k: v.clone() for k, v in source.state_dict().items()}
    official["afeat_extractor.something.weight"] = torch.zeros(2)  # other parts of the file
    target = SynchformerFeatures(TINY)
    target.load_official(official)
    assert torch.equal(target.vfeat_extractor.temp_embed, source.vfeat_extractor.temp_embed)
    official.pop("vfeat_extractor.norm.weight")
    with pytest.raises(RuntimeError, match="norm.weight"):
        SynchformerFeatures(TINY).load_official(official)


def naive_divided_attention(module, x, frames, over_time):
    """Token-by-token reference: each patch token attends to the CLS token plus its group."""
    batch, tokens, dim = x.shape
    heads, hd = module.heads, dim // module.heads
    patches = (tokens - 1) // frames
    q, k, v = module.qkv(x).chunk(3, dim=-1)
    out = torch.zeros(batch, tokens, dim)
    for b in range(batch):
        for i in range(tokens):
            if i == 0:
                members = list(range(tokens))
            else:
                f, n = divmod(i - 1, patches)
                group = ([1 + g * patches + n for g in range(frames)] if over_time
                         else [1 + f * patches + m for m in range(patches)])
                members = [0] + group
            for h in range(heads):
                sl = slice(h * hd, (h + 1) * hd)
                scores = (k[b, members, sl] @ q[b, i, sl]) / hd ** 0.5
                out[b, i, sl] = scores.softmax(0) @ v[b, members, sl]
    return module.proj(out)


@pytest.mark.parametrize("over_time", [True, False])
def test_divided_attention_groups_are_right(over_time):
    torch.manual_seed(1)
    module = DividedAttention(8, heads=2)
    x = torch.randn(2, 1 + 3 * 4, 8)  # 3 frames x 4 patches
    with torch.no_grad():
        fast = module(x, frames=3, over_time=over_time)
        slow = naive_divided_attention(module, x, 3, over_time)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_encode_frames_segments_and_shapes():
    torch.manual_seed(0)
    model = SynchformerFeatures(TINY).eval()
    frames = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
    feats = model.encode_frames(frames)
    assert feats.shape == (4 * 8, 32)  # (40 - 16) // 8 + 1 = 4 segments of 8 tokens
    # segment 1 is frames 8..23: recompute it alone, values in [-1, 1]
    segment = torch.from_numpy(frames[8:24]).permute(3, 0, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        alone = model.vfeat_extractor(segment[None])[0]
    assert torch.allclose(feats[8:16], alone, atol=1e-5)
