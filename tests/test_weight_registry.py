"""The weight registry: import official-layout files, verify, remove; failures change nothing."""
import json

import pytest
import torch

from engine.bundles import OfficialImportError
from engine.bundles.registry import WeightNotFound, WeightRegistry
from engine.codec.bigvgan import BIGVGAN_V1_16K, BigVGANGenerator
from engine.codec.vae import VAE_16K, MelVAE
from engine.model import DELTA_EMBEDDER_PREFIX, build_network
from tests.conftest import randomize


@pytest.fixture
def registry(tmp_path):
    return WeightRegistry(tmp_path / "weights")


def network_pth(tmp_path, preset="tiny"):
    net = randomize(build_network(preset))
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(DELTA_EMBEDDER_PREFIX)}
    path = tmp_path / f"mmaudio_{preset}_resaved.pth"
    torch.save(state, path)
    return path, state


def test_import_needs_recognition_or_an_explicit_name(registry, tmp_path):
    path, _ = network_pth(tmp_path)
    with pytest.raises(OfficialImportError, match=r"not an official MMAudio file \(md5 [0-9a-f]{32}\)"):
        registry.import_file(path)
    assert registry.entries() == [] and not (registry.root / "index.json").exists()


def test_import_round_trip_to_safetensors(registry, tmp_path):
    path, state = network_pth(tmp_path)
    entry = registry.import_file(path, kind="network", name="tiny")
    assert entry.file == "network-tiny.safetensors" and not entry.official
    assert entry.licence == "CC-BY-NC-4.0" and entry.source_name == path.name
    stored = registry.load("network", "tiny")
    assert stored.keys() == state.keys()
    assert all(torch.equal(stored[k], state[k]) for k in state)
    index = json.loads((registry.root / "index.json").read_text())
    assert index["network-tiny"]["sha256"] == entry.sha256
    assert [e.key for e in registry.entries()] == ["network-tiny"]
    assert list(registry.root.glob(".*partial")) == []


def test_vae_and_vocoder_are_checked_before_registering(registry, tmp_path):
    with torch.device("meta"):
        shapes = MelVAE(VAE_16K).state_dict()
    vae_state = {k: torch.zeros(v.shape) for k, v in shapes.items()}  # official layout, cheap
    good = tmp_path / "v1-16-copy.pth"
    torch.save(vae_state, good)
    registry.import_file(good, kind="vae", name="v1-16")
    bad = dict(vae_state)
    bad.pop("decoder.conv_out.weight")
    torch.save(bad, tmp_path / "broken.pth")
    with pytest.raises(OfficialImportError, match="does not load as vae 'v1-16'"):
        registry.import_file(tmp_path / "broken.pth", kind="vae", name="v1-16")
    with pytest.raises(OfficialImportError, match="preset small_16k expects"):
        registry.import_file(network_pth(tmp_path)[0], kind="network", name="small_16k")
    assert [e.key for e in registry.entries()] == ["vae-v1-16"]  # unchanged by the failures


def test_verify_and_remove(registry, tmp_path):
    path, _ = network_pth(tmp_path)
    entry = registry.import_file(path, kind="network", name="tiny")
    assert registry.verify() == [(entry, None)]
    data = bytearray(registry.path_of(entry).read_bytes())
    data[-3] ^= 0xFF
    registry.path_of(entry).write_bytes(bytes(data))
    (_, problem), = registry.verify()
    assert "sha256 does not match" in problem
    registry.remove("network", "tiny")
    assert registry.entries() == [] and not registry.path_of(entry).exists()
    with pytest.raises(WeightNotFound, match="not in the weight registry"):
        registry.remove("network", "tiny")
    with pytest.raises(WeightNotFound, match="mfmjt weights import"):
        registry.load("network", "tiny")


def test_cli_import_list_verify_remove(tmp_path, monkeypatch, capsys):
    from mfmjt_plugin.cli import main
    monkeypatch.setenv("MFMJT_DATA_DIR", str(tmp_path / "data"))
    path, _ = network_pth(tmp_path)
    assert main(["weights", "import", str(path)]) == 1
    assert "not an official MMAudio file" in capsys.readouterr().err
    assert main(["weights", "import", str(path), "--kind", "network", "--name", "tiny"]) == 0
    assert "imported network tiny (not an official checksum, licence CC-BY-NC-4.0)" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    assert "network     tiny            custom    CC-BY-NC-4.0  " in capsys.readouterr().out
    assert main(["weights", "verify"]) == 0 and "network tiny: ok" in capsys.readouterr().out
    assert main(["weights", "assemble", "--preset", "small_16k", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "missing network small_16k, vae v1-16, vocoder bigvgan_v1_16k" in err
    assert main(["weights", "remove", "network", "tiny"]) == 0
    assert main(["weights", "list"]) == 0 and "no weights imported" in capsys.readouterr().out


def import_tiny_stack(registry, tmp_path, fill: float = 0.0):
    """network tiny plus v1-16 and BigVGAN v1 files in the official layout (constant values)."""
    path, state = network_pth(tmp_path)
    registry.import_file(path, kind="network", name="tiny")
    for kind, name, module in (("vae", "v1-16", lambda: MelVAE(VAE_16K)),
                               ("vocoder", "bigvgan_v1_16k",
                                lambda: BigVGANGenerator(BIGVGAN_V1_16K))):
        with torch.device("meta"):
            shapes = module().state_dict()
        file = tmp_path / f"{name}.pth"
        torch.save({k: torch.full(v.shape, fill) if v.ndim else torch.zeros(())
                    for k, v in shapes.items()}, file)
        registry.import_file(file, kind=kind, name=name)
    return state


def test_assemble_builds_a_flow_matching_bundle(registry, tmp_path):
    """tiny is a 16 kHz preset, so it pairs with the v1-16 VAE and the BigVGAN v1 vocoder."""
    from engine.bundles import load_bundle
    from engine.bundles.assemble import assemble
    state = import_tiny_stack(registry, tmp_path)
    bundle = load_bundle(assemble(registry, "tiny", tmp_path / "bundle"))
    assert bundle.mode == "flow_matching" and bundle.manifest["licence"] == "CC-BY-NC-4.0"
    assert set(bundle.extra) == {"vae.safetensors", "vocoder.safetensors"}
    # no CLIP / Synchformer imported yet: the bundle says so (and refuses to load an encoder;
    # tests/test_official_generate.py)
    assert bundle.manifest["encoders"] == {"kind": "mmaudio", "version": 1}
    assert bundle.manifest["defaults"] == {"guidance": 4.5, "mode": "standard", "steps": 25}
    clip_file = tmp_path / "clip.safetensors"
    from safetensors.torch import save_file
    save_file({"visual.proj": torch.zeros(4, 2)}, str(clip_file))
    registry.import_file(clip_file, kind="clip", name="dfn5b")
    with pytest.raises(ValueError, match=r"clip dfn5b in the weight registry does not fit the "
                                         r"encoder architecture \(key '.*' is missing\); import "
                                         r"the official file again"):
        assemble(registry, "tiny", tmp_path / "bundle2")
    assert not (tmp_path / "bundle2").exists()
    assert bundle.manifest["codec"]["vocoder"]["name"] == "bigvgan_v1_16k"
    assert torch.equal(bundle.network.final_layer.conv.weight, state["final_layer.conv.weight"])
    assert torch.count_nonzero(bundle.network.dt_embed.mlp[2].weight) == 0


def test_assembled_bundle_gives_an_official_codec(registry, tmp_path):
    """An assembled (official) bundle's codec encodes for training: mel -> MMAudio VAE."""
    from engine.bundles import load_bundle
    from engine.bundles.assemble import assemble
    from engine.bundles.components import load_codec
    import_tiny_stack(registry, tmp_path, fill=0.01)
    codec = load_codec(load_bundle(assemble(registry, "tiny", tmp_path / "bundle")))
    assert codec.sampling_rate == 16000
    with torch.no_grad():
        posterior = codec.encode(torch.zeros(1, 16000))
    assert posterior.mean.shape == (1, 20, 31)  # v1-16: 20 channels at 31.25 tokens/s


def test_cli_user_errors_are_one_line_and_bugs_keep_their_traceback(tmp_path, monkeypatch, capsys):
    from engine.bundles import registry as registry_module
    from mfmjt_plugin.cli import main
    monkeypatch.setenv("MFMJT_DATA_DIR", str(tmp_path / "data"))
    cases = [(["weights", "remove", "network", "nope"],
              "error: network 'nope' is not in the weight registry\n"),
             (["weights", "download", "network", "nope"], "error: no official download for "
                                                          "network 'nope'; known: network "),
             (["weights", "assemble", "--preset", "huge_16k", "--out", str(tmp_path / "b")],
              "error: unknown network preset 'huge_16k'; choose one of [")]
    for argv, start in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(start) and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "b").exists()

    # a ValueError that is not a UserError is a bug in our code: it is not dressed as user input
    def broken(self):
        raise ValueError("internal: index out of step")
    monkeypatch.setattr(registry_module.WeightRegistry, "entries", broken)
    with pytest.raises(ValueError, match="internal: index out of step"):
        main(["weights", "list"])
