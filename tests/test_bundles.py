"""Bundle format: bit-exact round trips and clear errors (ARCHITECTURE.md contracts)."""
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.bundles import (MANIFEST_NAME, NETWORK_FILE, BundleError, load_bundle, read_manifest,
                            save_bundle)
from engine.model import build_network
from tests.conftest import features, randomize


@pytest.fixture
def bundle_path(tmp_path, tiny):
    return save_bundle(tmp_path / "b", tiny, preset="tiny", provenance={"steps": 3},
                       licence="CC-BY-NC-4.0",
                       extra={"codec.safetensors": {"w": torch.arange(6.0).view(2, 3)}})


def test_round_trip_is_bit_exact_and_behaves_identically(bundle_path, tiny):
    bundle = load_bundle(bundle_path)
    original, loaded = tiny.state_dict(), bundle.network.state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    f = features(tiny, 1.0)
    with torch.no_grad():
        assert torch.equal(tiny(**f, t=0.0, dt=1.0), bundle.network(**f, t=0.0, dt=1.0))
    assert torch.equal(bundle.extra["codec.safetensors"]["w"], torch.arange(6.0).view(2, 3))
    assert bundle.mode == "meanflow" and bundle.network.config == tiny.config


def test_manifest_carries_config_stats_checksums_and_metadata(bundle_path, tiny):
    manifest = json.loads((bundle_path / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == 1
    assert manifest["network"]["preset"] == "tiny"
    assert manifest["network"]["config"]["hidden_dim"] == 64
    assert manifest["latent_stats"]["std"] == pytest.approx(tiny.latent_std.flatten().tolist())
    assert manifest["licence"] == "CC-BY-NC-4.0" and manifest["provenance"] == {"steps": 3}
    assert set(manifest["files"]) == {NETWORK_FILE, "codec.safetensors"}
    assert all(len(v["sha256"]) == 64 for v in manifest["files"].values())
    with safe_open(str(bundle_path / NETWORK_FILE), framework="pt") as fh:
        meta = fh.metadata()
    assert json.loads(meta["network_config"]) == manifest["network"]["config"]


def test_dtype_is_preserved(tmp_path):
    net = randomize(build_network("tiny")).to(torch.bfloat16)
    loaded = load_bundle(save_bundle(tmp_path / "bf16", net, preset="tiny")).network
    assert loaded.final_layer.conv.weight.dtype == torch.bfloat16
    assert torch.equal(loaded.final_layer.conv.weight, net.final_layer.conv.weight)
    assert not loaded.latent_mean.requires_grad and loaded.empty_clip_feat.requires_grad


def test_existing_bundle_is_never_overwritten(bundle_path, tiny):
    before = (bundle_path / NETWORK_FILE).read_bytes()
    with pytest.raises(FileExistsError, match="never overwritten"):
        save_bundle(bundle_path, tiny, preset="tiny")
    assert (bundle_path / NETWORK_FILE).read_bytes() == before
    assert [p.name for p in bundle_path.parent.iterdir()] == ["b"]  # no partial folders left


def test_corrupted_file_is_named(bundle_path):
    data = bytearray((bundle_path / NETWORK_FILE).read_bytes())
    data[-5] ^= 0xFF
    (bundle_path / NETWORK_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"network\.safetensors: sha256 .* does not match"):
        load_bundle(bundle_path)


def _rewrite_network(bundle_path, mutate):
    """Replace network.safetensors by a mutated state and fix the checksum, as a careless tool
    might, so the shape/key checks (not the checksum) must catch it."""
    from engine.bundles import sha256_file
    path = bundle_path / NETWORK_FILE
    with safe_open(str(path), framework="pt") as fh:
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    mutate(state)
    path.unlink()
    save_file(state, str(path))
    manifest = json.loads((bundle_path / MANIFEST_NAME).read_text())
    manifest["files"][NETWORK_FILE]["sha256"] = sha256_file(path)
    (bundle_path / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_wrong_shape_names_file_and_key(bundle_path):
    _rewrite_network(bundle_path, lambda s: s.__setitem__("final_layer.conv.weight",
                                                          torch.zeros(20, 64, 5)))
    with pytest.raises(BundleError, match=r"network\.safetensors: key 'final_layer\.conv\.weight' "
                                          r"has shape \(20, 64, 5\), expected \(20, 64, 7\)"):
        load_bundle(bundle_path)


def test_missing_key_is_named(bundle_path):
    _rewrite_network(bundle_path, lambda s: s.pop("sync_pos_emb"))
    with pytest.raises(BundleError, match="key 'sync_pos_emb' is missing"):
        load_bundle(bundle_path)


def test_unknown_format_version_and_missing_manifest(bundle_path, tmp_path):
    manifest = json.loads((bundle_path / MANIFEST_NAME).read_text())
    manifest["format_version"] = 99
    (bundle_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest\.json: key 'format_version' is 99"):
        read_manifest(bundle_path)
    with pytest.raises(BundleError, match="not found; is .* a bundle folder"):
        load_bundle(tmp_path / "nowhere")
