"""Importing official MMAudio networks: strict, function-preserving, dtype-preserving, clear errors."""
import hashlib
import pickle

import pytest
import torch

from engine.bundles import (OFFICIAL_FILES, OfficialFile, OfficialImportError, import_mmaudio,
                            md5_file, recognise)
from engine.model import DELTA_EMBEDDER_PREFIX, build_network
from tests.conftest import features, randomize


def official_state(preset="tiny", dtype=torch.float32, seed=0):
    """A state dict in MMAudio's layout (no Δ embedder, legacy keys present), as saved by it."""
    net = randomize(build_network(preset), seed=seed)
    state = {k: v.clone().to(dtype) for k, v in net.state_dict().items()
             if not k.startswith(DELTA_EMBEDDER_PREFIX)}
    state["t_embed.freqs"] = torch.ones(128)  # legacy buffers some checkpoints still carry
    state["latent_rot"] = torch.zeros(1, 2, 3)
    return net, state


def test_import_is_strict_and_function_preserving(tmp_path):
    source, state = official_state()
    path = tmp_path / "mmaudio_tiny.pth"
    torch.save(state, path)
    imported = import_mmaudio(path, "tiny")
    assert torch.count_nonzero(imported.dt_embed.mlp[2].weight) == 0
    f = features(source, 1.0)
    with torch.no_grad():
        reference = source(**f, t=0.3, dt=0.0)
        for dt in (0.0, 0.5):
            assert torch.equal(imported(**f, t=0.3, dt=dt), reference)
    assert not imported.latent_mean.requires_grad and imported.empty_clip_feat.requires_grad


def test_dtype_is_preserved():
    _, state = official_state(dtype=torch.bfloat16)
    imported = import_mmaudio(state, "tiny")
    assert imported.fused_blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert imported.dt_embed.mlp[0].weight.dtype == torch.bfloat16


def test_checkpoint_of_another_preset_is_named():
    with torch.device("meta"):
        state = {k: v for k, v in build_network("small_44k").state_dict().items()
                 if not k.startswith(DELTA_EMBEDDER_PREFIX)}
    with pytest.raises(OfficialImportError, match=r"preset small_16k expects .* it looks like a "
                                                   r"small_44k checkpoint"):
        import_mmaudio(state, "small_16k")


def test_missing_and_unexpected_keys():
    _, state = official_state()
    broken = dict(state)
    broken.pop("final_layer.conv.weight")
    with pytest.raises(OfficialImportError, match="'final_layer.conv.weight' is missing"):
        import_mmaudio(broken, "tiny")
    extra = dict(state, **{"vocoder.weight": torch.zeros(1)})
    with pytest.raises(OfficialImportError, match="unexpected key 'vocoder.weight'"):
        import_mmaudio(extra, "tiny")


class NotWeights:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_pickles_that_weights_only_refuses_and_truncated_files(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:
        pickle.dump({"weight": NotWeights()}, fh)
    with pytest.raises(OfficialImportError, match="weights_only refused it"):
        import_mmaudio(evil, "tiny")
    _, state = official_state()
    good = tmp_path / "good.pth"
    torch.save(state, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(OfficialImportError, match="may be truncated"):
        import_mmaudio(cut, "tiny")
    with pytest.raises(OfficialImportError, match="file not found"):
        import_mmaudio(tmp_path / "nope.pth", "tiny")


def test_md5_recognition(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"not an official file")
    assert md5_file(path) == hashlib.md5(b"not an official file").hexdigest()
    assert recognise(path) is None
    table = {md5_file(path): OfficialFile("vae", "v1-16", "v1-16.pth")}
    assert recognise(path, table).name == "v1-16"
    kinds = {f.name: f.kind for f in OFFICIAL_FILES.values()}
    assert kinds == {"small_16k": "network", "small_44k": "network", "medium_44k": "network",
                     "large_44k": "network", "large_44k_v2": "network", "v1-16": "vae",
                     "v1-44": "vae", "bigvgan_v1_16k": "vocoder", "synchformer": "synchformer"}
    assert all(f.licence == "CC-BY-NC-4.0" for f in OFFICIAL_FILES.values())
