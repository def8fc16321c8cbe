"""The training loop: loss falls, resume is bit-identical on CPU, checkpoints survive kills."""
import json
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from engine.codec import StarterCodec
from engine.features import StarterEncoder
from engine.model import build_network
from tests.library_factory import make_library
from trainer.cache import build_cache, load_shards
from trainer.checkpoint import latest_checkpoint
from trainer.data import scan_library
from trainer.loop import train
from trainer.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def write_shards(shards, folder: Path) -> Path:
    """The module's shards as a cache folder that a subprocess can load."""
    from safetensors.torch import save_file
    folder.mkdir()
    for i, shard in enumerate(shards):
        save_file({k: v for k, v in shard.items() if k != "captions"},
                  str(folder / f"shard-{i:05d}.safetensors"),
                  metadata={"captions": json.dumps(shard["captions"])})
    return folder


def starter_sized_network(seed=0):
    torch.manual_seed(seed)
    return build_network("tiny", clip_dim=64, sync_dim=72, text_dim=64, text_seq_len=16)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    library = make_library(base / "library")
    torch.manual_seed(0)
    build_cache(scan_library(library, window_seconds=2.0), base / "cache",
                codec=StarterCodec().eval(), encoder=StarterEncoder(), sample_rate=16000)
    return load_shards(base / "cache")


def test_recipes_are_data():
    paper = load_recipe("meanflow-paper")
    assert (paper.lr, paper.betas, paper.weight_decay) == (2e-4, (0.9, 0.95), 1e-6)
    assert paper.lr_factor(0) == pytest.approx(1 / 1000) and paper.lr_factor(999) == 1.0
    assert paper.lr_factor(250_000) == pytest.approx(0.1)
    assert paper.lr_factor(350_000) == pytest.approx(0.01)
    assert (paper.mu, paper.sigma, paper.mean_ratio) == (-2.0, 2.0, 0.1)
    assert (paper.batch_size, paper.steps) == (64 * 8, 400_000)  # 64 per GPU on 8 GPUs
    with pytest.raises(FileNotFoundError, match="known recipes: .*meanflow-paper"):
        load_recipe("nope")


def test_resume_is_bit_identical(shards, tmp_path):
    recipe = load_recipe("debug")
    straight = starter_sized_network()
    result = train(straight, shards, recipe, tmp_path / "a")
    assert result.status == "finished" and result.step == 8

    resumed = starter_sized_network()
    first = train(resumed, shards, recipe, tmp_path / "b", max_steps=4)
    assert first.step == 4 and latest_checkpoint(tmp_path / "b").name == "ckpt-00000004.safetensors"
    fresh_process_network = starter_sized_network(seed=123)  # weights come from the checkpoint
    second = train(fresh_process_network, shards, recipe, tmp_path / "b", resume=True)
    assert second.step == 8
    a, b = straight.state_dict(), fresh_process_network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert second.last_loss == result.last_loss


def fixed_loss(network, shard) -> float:
    """Flow-matching error at fixed times and noise on the shard's windows (no dropout)."""
    from trainer.objectives import drop_conditions, flow_matching_loss, network_velocity
    gen = torch.Generator().manual_seed(7)
    latent = network.normalize(shard["latent_mean"].transpose(1, 2))
    noise = torch.randn(latent.shape, generator=gen)
    s = torch.linspace(0.1, 0.9, latent.shape[0])
    with torch.no_grad():
        # audio-only windows see the network's empty video features, as in training
        features = drop_conditions(network, shard["clip"], shard["sync"], shard["text"], gen,
                                   video_p=0.0, text_p=0.0, has_video=shard["has_video"].bool())
        cond = network.preprocess_conditions(*features)
        return flow_matching_loss(network_velocity(network), latent, noise, s, cond).loss.item()


def test_loss_falls_on_a_tiny_overfit_set(shards, tmp_path):
    import dataclasses
    # the random starter codec's posterior is as wide as N(0, 1); a trained one is narrow, and
    # only then is there something to overfit: narrow it here
    narrow = [{**shards[0], "latent_std": shards[0]["latent_std"] * 0.01}]
    network = starter_sized_network()
    before = fixed_loss(network, narrow[0])
    recipe = dataclasses.replace(load_recipe("debug"), steps=60, decay_steps=(1000,),
                                 checkpoint_every=1000)
    train(network, narrow, recipe, tmp_path / "o")
    after = fixed_loss(network.eval(), narrow[0])
    assert after < 0.7 * before, (before, after)


KILL_SCRIPT = """
import sys, torch
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from tests.test_trainer_loop import starter_sized_network
from trainer.cache import load_shards
from trainer.loop import train
from trainer.recipe import load_recipe
import dataclasses
recipe = dataclasses.replace(load_recipe("debug"), steps=10**6, checkpoint_every=2)
def progress(step, total, loss):
    print("step", step, flush=True)
train(starter_sized_network(), load_shards(sys.argv[1]), recipe, Path(sys.argv[2]),
      resume=True, progress=progress)
"""


def wait_for_step(proc: subprocess.Popen, at_least: int, seconds: float = 120.0) -> int:
    """The first step >= at_least that the training subprocess prints.

    Waiting for one exact step would spin forever on a fast machine: a run resumed past it never
    prints it, and readline() at the end of the pipe returns "" again and again (the CI timeout of
    2026-12-02). A run that ends, or prints nothing in time, fails the test here instead.
    """
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(proc.stdout.readline, "")]
                     + [lines.put(None)], daemon=True).start()
    deadline = time.monotonic() + seconds
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"training printed no step >= {at_least} in {seconds:.0f} s")
        if line is None:
            raise AssertionError(f"training ended (exit {proc.wait(30)}) before step {at_least}")
        words = line.split()
        if len(words) == 2 and words[0] == "step" and int(words[1]) >= at_least:
            return int(words[1])


@contextlib.contextmanager
def training_process(cache: Path, run: Path, env: dict):
    """The endless training run of KILL_SCRIPT; killed on the way out whatever happened, so a
    failing test never leaves a 10**6-step trainer running beside the rest of the suite."""
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(cache), str(run), str(ROOT)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_sigterm_writes_a_checkpoint_and_kill_9_keeps_the_previous_one(shards, tmp_path):
    cache = write_shards(shards, tmp_path / "cache")
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with training_process(cache, run, env) as proc:
        wait_for_step(proc, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # clean exit
    interrupted = latest_checkpoint(run)
    assert interrupted is not None and int(interrupted.stem.split("-")[1]) >= 3
    interrupted_step = int(interrupted.stem.split("-")[1])
    with training_process(cache, run, env) as proc:
        # the resumed run goes on from the interrupted step, a checkpoint every 2 steps
        wait_for_step(proc, interrupted_step + 6)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert int(latest_checkpoint(run).stem.split("-")[1]) > interrupted_step
    import dataclasses
    last_step = int(latest_checkpoint(run).stem.split("-")[1])
    recipe = dataclasses.replace(load_recipe("debug"), steps=last_step + 1)
    result = train(starter_sized_network(), shards, recipe, run, resume=True)
    assert result.step == last_step + 1  # the surviving checkpoint loads and training continues
    assert not list(run.glob("*.partial"))


def test_new_network_uses_cache_statistics_and_export_writes_the_ema(shards, tmp_path):
    import dataclasses

    from engine.bundles import load_bundle
    from safetensors.torch import save_file as save
    from trainer.export import export_checkpoint, new_network
    from trainer.cache import STATS_FILE
    stats = {"mean": torch.arange(20.0), "std": torch.full((20,), 2.0)}
    (tmp_path / "cache").mkdir()
    save(stats, str(tmp_path / "cache" / STATS_FILE))
    network = new_network("tiny", tmp_path / "cache", clip_dim=64, sync_dim=72, text_dim=64,
                          text_seq_len=16)
    assert torch.equal(network.latent_mean.flatten(), stats["mean"])
    with pytest.raises(ValueError, match="channels"):
        new_network("small_44k", tmp_path / "cache")
    recipe = dataclasses.replace(load_recipe("debug"), steps=4)
    result = train(network, shards, recipe, tmp_path / "run")
    bundle = load_bundle(export_checkpoint(result.checkpoint, tmp_path / "bundle", preset="tiny",
                                           data_summary={"windows": 13}))
    assert bundle.mode == "meanflow"
    assert bundle.manifest["provenance"] == {"recipe": "debug", "steps": 4,
                                             "checkpoint": "ckpt-00000004.safetensors",
                                             "weights": "ema", "data": {"windows": 13}}
    from safetensors import safe_open
    with safe_open(str(result.checkpoint), framework="pt") as fh:
        ema = fh.get_tensor("ema.fused_blocks.0.attn.qkv.weight")
        model = fh.get_tensor("model.fused_blocks.0.attn.qkv.weight")
    exported = bundle.network.fused_blocks[0].attn.qkv.weight
    assert torch.equal(exported, ema) and not torch.equal(exported, model)


def test_tensorboard_logs_losses_lr_and_validation(shards, tmp_path):
    import dataclasses
    import math

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    recipe = dataclasses.replace(load_recipe("debug"), steps=4)
    tone = torch.sin(torch.arange(16000) * 2 * math.pi * 440 / 16000) * 0.3
    train(starter_sized_network(), shards, recipe, tmp_path / "run", log_dir=tmp_path / "tb",
          validate=lambda step, net: {"tone": (tone, 16000)})
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"audio": 0, "images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("loss/meanflow")] == [1, 2, 3, 4]
    lrs = [e.value for e in events.Scalars("lr")]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-3)  # warm-up 2, decay at 6
    assert "validation/tone" in events.Tags()["audio"]
    assert [e.step for e in events.Images("spectrogram/tone")] == [4]


DISK_FULL_SCRIPT = """
import dataclasses, resource, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us
from tests.test_trainer_loop import starter_sized_network
from trainer.cache import load_shards
from trainer.checkpoint import CheckpointError
from trainer.loop import train
from trainer.recipe import load_recipe
shards = load_shards(sys.argv[1])
recipe = dataclasses.replace(load_recipe("debug"), steps=2, checkpoint_every=1)
network = starter_sized_network()
train(network, shards, dataclasses.replace(recipe, steps=1), Path(sys.argv[2]))
limit = int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # the disk is now "full"
try:
    train(network, shards, recipe, Path(sys.argv[2]), resume=True)
except CheckpointError as err:
    print(err.strerror)
    sys.exit(3)
"""


def test_disk_full_is_reported_and_the_previous_checkpoint_survives(shards, tmp_path):
    cache = write_shards(shards, tmp_path / "cache")
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", DISK_FULL_SCRIPT, str(cache), str(run), str(ROOT),
                           str(100_000)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    message = proc.stdout.strip()
    assert "no space left to write ckpt-00000002.safetensors" in message
    assert "the previous checkpoint ckpt-00000001.safetensors is intact" in message
    assert sorted(p.name for p in run.iterdir()) == ["ckpt-00000001.safetensors"]
    network = starter_sized_network()
    import dataclasses
    result = train(network, shards, dataclasses.replace(load_recipe("debug"), steps=2), run,
                   resume=True)
    assert result.step == 2
