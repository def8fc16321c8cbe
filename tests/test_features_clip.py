"""CLIP features through open_clip, on a tiny architecture with random weights."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engine.features.clip import CLIP_MEAN, CLIP_STD, OFFICIAL_MODEL, ClipFeatures

TINY = {"embed_dim": 32, "quick_gelu": True,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32,
                       "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 48, "heads": 2,
                     "layers": 2}}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip
    folder = tmp_path_factory.mktemp("clipcfg")
    (folder / "mfmjt-tiny-clip.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    source = open_clip.create_model("mfmjt-tiny-clip", pretrained=None)
    weights = folder / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))
    return ClipFeatures("mfmjt-tiny-clip", weights), source


def test_image_features_are_normalised_pooled_embeddings(tiny_clip):
    clip, source = tiny_clip
    frames = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    feats = clip.encode_images(frames)
    assert feats.shape == (3, 32)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(3), atol=1e-5)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = F.normalize(source.eval().encode_image(x), dim=-1)
    assert torch.allclose(feats, expected, atol=1e-5)  # the loaded weights are the saved ones


def test_text_features_are_per_token_after_ln_final(tiny_clip):
    clip, source = tiny_clip
    feats = clip.encode_text(["glass tapped twice", ""])
    assert feats.shape == (2, 77, 48)  # transformer width, not the projection
    assert torch.allclose(feats.norm(dim=-1), torch.ones(2, 77), atol=1e-5)
    # the pooled projection of the same model is a different thing: the EOT token projected
    tokens = clip.tokenizer(["glass tapped twice"])
    with torch.no_grad():
        pooled = source.encode_text(tokens)
    assert pooled.shape == (1, 32)
    assert not torch.allclose(feats[0], feats[1])
    assert clip.version.startswith("mfmjt-tiny-clip:") and clip.version != "mfmjt-tiny-clip:random"


def test_pickle_weights_are_refused(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="must be a .safetensors file"):
        ClipFeatures("mfmjt-tiny-clip", bad)


@pytest.mark.slow
def test_official_h14_architecture_gives_1024_d_outputs():
    import open_clip
    model = open_clip.create_model(OFFICIAL_MODEL, pretrained=None, device="meta")
    image = model.encode_image(torch.empty(1, 3, 384, 384, device="meta"))
    assert image.shape == (1, 1024)  # 384 px in, 27 x 27 patches like 378
    assert model.ln_final.normalized_shape == (1024,)  # per-token text features are 1024-d
    assert model.context_length == 77


def test_mmaudio_encoder_combines_clip_and_synchformer(tiny_clip):
    from engine.features.official import MMAudioEncoder
    from engine.features.synchformer import SynchformerConfig, SynchformerFeatures
    clip, _ = tiny_clip
    sync = SynchformerFeatures(SynchformerConfig(embed_dim=16, depth=1, num_heads=2, img_size=32))
    encoder = MMAudioEncoder(clip, sync, synchformer_version="test")
    rng = np.random.default_rng(0)
    feats = encoder.encode_video(rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8),
                                 rng.integers(0, 255, (24, 32, 32, 3), dtype=np.uint8))
    assert feats.clip.shape == (4, 32) and feats.sync.shape == (16, 16)  # 2 segments x 8
    assert (encoder.clip_dim, encoder.sync_dim, encoder.text_dim, encoder.text_len) == (32, 16, 48, 77)
    assert encoder.encode_text(["a door slam"]).shape == (1, 77, 48)
    other = MMAudioEncoder(clip, sync, synchformer_version="other")
    assert other.version != encoder.version  # cache keys follow the weights
