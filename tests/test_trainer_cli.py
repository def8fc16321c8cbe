"""`mfmjt train cache | fit | export` end to end on a starter-stack bundle and a generated library."""
import os

import pytest
import torch

from engine.bundles import load_bundle, save_bundle
from engine.bundles.components import starter_descriptors
from engine.codec import StarterCodec
from mfmjt_plugin.cli import main
from tests.library_factory import make_library, tree_hashes
from tests.test_trainer_loop import starter_sized_network


def starter_bundle(path):
    torch.manual_seed(0)
    codec = StarterCodec()
    codec_desc, encoder_desc = starter_descriptors(encoder_seed=20251123)
    return save_bundle(path, starter_sized_network(), preset="tiny", codec=codec_desc,
                       encoders=encoder_desc,
                       extra={"codec.safetensors": {k: v.contiguous()
                                                    for k, v in codec.state_dict().items()}})


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_cache_fit_export(tmp_path, capsys, umask_022):
    library = make_library(tmp_path / "library")
    before = tree_hashes(library)
    init = starter_bundle(tmp_path / "init")
    assert main(["train", "cache", str(library), "--bundle", str(init), "--out",
                 str(tmp_path / "cache"), "--window", "2"]) == 0
    assert "cache: 13 windows in 2 shards (0 reused)" in capsys.readouterr().out
    assert main(["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"),
                 "--init", str(init), "--out", str(tmp_path / "run"), "--max-steps", "4"]) == 0
    assert "finished at step 4" in capsys.readouterr().out
    run = tmp_path / "run"
    # the same folder again without --resume: refused before any work, nothing touched
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    run_record = (run / "run.json").read_bytes()
    assert main(["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"),
                 "--init", str(init), "--out", str(run), "--max-steps", "2"]) == 1
    assert capsys.readouterr().err == (
        f"error: {run} already holds a training run (checkpoint ckpt-00000004.safetensors); "
        "continue it with --resume, or give a new --out folder\n")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == checkpoints
    assert (run / "run.json").read_bytes() == run_record
    # resuming with other settings would make the export describe the wrong run
    assert main(["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"),
                 "--init", str(init), "--out", str(run), "--resume", "--lora", "4"]) == 1
    assert capsys.readouterr().err == (f"error: {run} was started with other settings (lora was 0, "
                                       "now 4); resume it with those, or give a new --out folder\n")
    # a kill -9 during a checkpoint write leaves a temporary file: the next start removes it
    stale = run / "checkpoints" / ".ckpt-00000006.safetensors.k1ll3d.partial"
    stale.write_bytes(b"\0" * 1024)
    assert main(["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"),
                 "--init", str(init), "--out", str(run), "--resume"]) == 0
    assert "finished at step 8" in capsys.readouterr().out
    assert not stale.exists()
    # outputs follow the user's umask (022 here), not mkstemp's private 0600
    for path in (run / "checkpoints").iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert any(tag.startswith("validation/") for tag in events.Tags()["audio"])
    assert any(tag.startswith("spectrogram/") for tag in events.Tags()["images"])
    assert "loss/meanflow" in events.Tags()["scalars"]
    assert main(["train", "export", "--run", str(tmp_path / "run"), "--out",
                 str(tmp_path / "exported")]) == 0
    assert (tmp_path / "exported").stat().st_mode & 0o777 == 0o755
    # a folder that cannot be written: one line, nothing half-written
    assert main(["train", "export", "--run", str(run), "--out", "/proc/mfmjt/bundle"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: /proc/mfmjt") and err.endswith("; nothing was kept\n")
    assert err.count("\n") == 1
    bundle = load_bundle(tmp_path / "exported")
    provenance = bundle.manifest["provenance"]
    assert provenance["recipe"] == "debug" and provenance["steps"] == 8
    assert provenance["data"]["usable_files"] == 6 and provenance["data"]["windows"] == 13
    assert bundle.manifest["codec"]["kind"] == "starter" and "codec.safetensors" in bundle.extra
    assert tree_hashes(library) == before
    assert main(["train", "cache", str(library), "--bundle", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "c2")]) == 1
    assert "is neither a folder nor a registered bundle" in capsys.readouterr().err
    # --data may also be the library itself: it is cached into OUT/cache first
    assert main(["train", "fit", "--recipe", "debug", "--data", str(library), "--window", "2",
                 "--init", str(init), "--out", str(tmp_path / "run2"), "--max-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "cache: 13 windows in 2 shards" in out and "finished at step 2" in out
    assert (tmp_path / "run2" / "cache" / "scan.json").exists()
    # a LoRA run exports as a plain merged bundle
    assert main(["train", "fit", "--recipe", "debug", "--data", str(tmp_path / "cache"),
                 "--init", str(init), "--out", str(tmp_path / "lora"), "--max-steps", "2",
                 "--lora", "4"]) == 0
    assert main(["train", "export", "--run", str(tmp_path / "lora"), "--out",
                 str(tmp_path / "lora_bundle")]) == 0
    merged = load_bundle(tmp_path / "lora_bundle")
    assert merged.manifest["provenance"]["lora_rank"] == 4
    assert not any("lora" in k for k in merged.network.state_dict())
    assert tree_hashes(library) == before


def test_rotation_keeps_the_checkpoint_just_written_and_touches_no_later_one(tmp_path):
    """Rotation used to sort every ckpt-* in the folder and delete all but the last two: an old
    run's higher-numbered files survived and the new checkpoint was deleted."""
    from trainer.checkpoint import Position, save_checkpoint
    network = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(network.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "ckpt-00000900.safetensors").write_bytes(b"someone else's")

    def save(step):
        return save_checkpoint(folder, network=network, ema={}, optimizer=optimizer,
                               scheduler=scheduler, generators={}, position=Position(step, 0, 0),
                               extra={})
    for step in (2, 4, 6):
        written = save(step)
        assert written.exists()
    assert sorted(p.name for p in folder.iterdir()) == [
        "ckpt-00000004.safetensors", "ckpt-00000006.safetensors", "ckpt-00000900.safetensors"]


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    """Issue 15: `train` reports what the user can fix in one line (exit 1) and lets anything
    else through as the bug it is."""
    from mfmjt_plugin import train_run
    library = make_library(tmp_path / "library")
    init = starter_bundle(tmp_path / "init")
    assert main(["train", "cache", str(library), "--bundle", str(init), "--out",
                 str(tmp_path / "cache"), "--window", "2"]) == 0
    capsys.readouterr()
    recipe = tmp_path / "mine.toml"
    recipe.write_text("[optim]\nlr = 1e-4\n[train]\nstepz = 10\n")
    shard = next((tmp_path / "cache").glob("shard-*.safetensors"))
    cases = [
        (["train", "fit", "--recipe", str(recipe), "--cache", str(tmp_path / "cache"),
          "--init", str(init), "--out", str(tmp_path / "r1")], "recipe keys missing ["),
        (["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"), "--init",
          str(init), "--out", str(tmp_path / "r2"), "--freeze", "no_such_block"],
         "no parameters match ['no_such_block']"),
        (["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"),
          "--out", str(tmp_path / "r3")], "give --init BUNDLE to fine-tune"),
        (["train", "codec", str(tmp_path / "cache"), "--out", str(tmp_path / "c"), "--part",
          "vocoder-gan", "--steps", "1"], "no file with sound to train the codec on"),
    ]
    for argv, words in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.rsplit("\r", 1)[-1]  # after a progress bar cleared
        assert err.startswith("error: ") and words in err and err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err
    # a damaged shard is a CacheError, a UserError: one line naming the shard
    shard.write_bytes(shard.read_bytes()[:100])
    assert main(["train", "fit", "--recipe", "debug", "--cache", str(tmp_path / "cache"),
                 "--init", str(init), "--out", str(tmp_path / "r4"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shard}") and err.count("\n") == 1, err

    def broken(args):
        raise ValueError("internal: shapes (3,) and (4,) differ")
    monkeypatch.setattr(train_run, "export", broken)
    with pytest.raises(ValueError, match="internal: shapes"):
        main(["train", "export", "--run", str(tmp_path / "r1"), "--out", str(tmp_path / "x")])
