"""Training cache: latents and features once, resumable after a killed run, validated on load."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.codec import StarterCodec
from engine.features import StarterEncoder
from tests.library_factory import make_library, tree_hashes
from trainer.cache import STATS_FILE, CacheError, build_cache, load_shards
from trainer.data import scan_library

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return make_library(tmp_path_factory.mktemp("lib") / "library")


def codec():
    torch.manual_seed(0)
    return StarterCodec().eval()


def test_cache_contents(library, tmp_path):
    before = tree_hashes(library)
    report = scan_library(library, window_seconds=2.0)
    summary = build_cache(report, tmp_path / "cache", codec=codec(), encoder=StarterEncoder(),
                          sample_rate=16000, files_per_shard=2)
    shards = load_shards(tmp_path / "cache")
    assert summary.shards == 3 and summary.computed == [0, 1, 2] and summary.reused == []
    total = sum(s["latent_mean"].shape[0] for s in shards)
    # door 2 s: 1, take 3 s: 1, clip_a 0.5-16.5 s: 8, drips 1.5 s: 1 padded, mp3 1 s: 1 padded,
    # scene 2 s: 1
    assert total == summary.windows == 13
    first = shards[0]
    n = first["latent_mean"].shape[0]
    assert first["latent_mean"].shape == (n, 20, 62) and first["latent_std"].min() > 0  # 31.25/s
    assert first["clip"].shape == (n, 16, 64) and first["sync"].shape == (n, 40, 72)
    assert first["text"].shape == (n, 16, 64)
    videos = torch.cat([s["has_video"] for s in shards])
    assert int(videos.sum()) == 1  # scene.mp4: one 2 s window with picture
    audio_only = torch.cat([s["clip"] for s in shards])[videos == 0]
    assert audio_only.abs().max() == 0
    stats = __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        str(tmp_path / "cache" / STATS_FILE))
    assert stats["mean"].shape == (20,) and (stats["std"] > 0).all()
    assert tree_hashes(library) == before



def test_a_retrained_vae_refreshes_only_the_latents(library, tmp_path):
    from trainer.cache import refresh_latents
    report = scan_library(library, window_seconds=2.0)
    build_cache(report, tmp_path / "cache", codec=codec(), encoder=StarterEncoder(),
                sample_rate=16000, files_per_shard=2)
    before = load_shards(tmp_path / "cache")
    torch.manual_seed(5)
    retrained = StarterCodec().eval()
    summary = refresh_latents(report, tmp_path / "cache", codec=retrained,
                              encoder=StarterEncoder(), sample_rate=16000, files_per_shard=2)
    assert summary.computed == [0, 1, 2] and summary.windows == 13
    after = load_shards(tmp_path / "cache")
    for old, new in zip(before, after):  # picture and text features kept, latents new
        assert torch.equal(old["clip"], new["clip"]) and torch.equal(old["sync"], new["sync"])
        assert torch.equal(old["text"], new["text"]) and old["captions"] == new["captions"]
        assert not torch.allclose(old["latent_mean"], new["latent_mean"])
    door = after[0]  # the first window is the door's: its latents are the new VAE's own
    from trainer.data.windows import iter_windows
    wave = next(iter_windows(report.items[0], window_seconds=2.0, sample_rate=16000)).audio
    with torch.no_grad():
        expected = retrained.encode(torch.from_numpy(wave)[None]).mean[0]
    assert torch.allclose(door["latent_mean"][0], expected, atol=1e-6)
    from safetensors.torch import load_file
    stats = load_file(str(tmp_path / "cache" / STATS_FILE))  # the network's normalisation too
    means = torch.cat([s["latent_mean"] for s in after]).transpose(0, 1).reshape(20, -1)
    assert torch.allclose(stats["mean"], means.mean(dim=1))
    again = build_cache(report, tmp_path / "cache", codec=retrained, encoder=StarterEncoder(),
                        sample_rate=16000, files_per_shard=2)
    assert again.reused == [0, 1, 2]  # the refreshed shards are current for the new codec


SCRIPT = """
import sys, time, torch
from pathlib import Path
from engine.codec import StarterCodec
from engine.features import StarterEncoder
from trainer.cache import build_cache
from trainer.data import scan_library
torch.manual_seed(0)
report = scan_library(sys.argv[1], window_seconds=2.0)
def slow(done, total):
    print("shard", done, flush=True)
    time.sleep(30)  # the test kills the process here
build_cache(report, Path(sys.argv[2]), codec=StarterCodec().eval(), encoder=StarterEncoder(),
            sample_rate=16000, files_per_shard=2, progress=slow)
"""


def test_resume_after_a_killed_run(library, tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(library), str(cache)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "shard 1"  # first shard written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sorted(p.name for p in cache.iterdir()) == ["shard-00000.safetensors"]
    summary = build_cache(scan_library(library, window_seconds=2.0), cache, codec=codec(),
                          encoder=StarterEncoder(), sample_rate=16000, files_per_shard=2)
    assert summary.reused == [0] and summary.computed == [1, 2]
    fresh = build_cache(scan_library(library, window_seconds=2.0), tmp_path / "fresh",
                        codec=codec(), encoder=StarterEncoder(), sample_rate=16000,
                        files_per_shard=2)
    for a, b in zip(load_shards(cache), load_shards(tmp_path / "fresh")):
        assert torch.equal(a["latent_mean"], b["latent_mean"]) and torch.equal(a["sync"], b["sync"])
    assert fresh.windows == summary.windows


def test_damaged_shard_is_named_and_rebuilt(library, tmp_path):
    report = scan_library(library, window_seconds=2.0)
    build_cache(report, tmp_path / "c", codec=codec(), encoder=StarterEncoder(),
                sample_rate=16000, files_per_shard=3)
    shard = tmp_path / "c" / "shard-00001.safetensors"
    shard.write_bytes(b"garbage")
    with pytest.raises(CacheError, match=r"shard-00001.safetensors: damaged cache shard .* run "
                                         r"`mfmjt train cache` again"):
        load_shards(tmp_path / "c")
    summary = build_cache(report, tmp_path / "c", codec=codec(), encoder=StarterEncoder(),
                          sample_rate=16000, files_per_shard=3)
    assert summary.computed == [1] and summary.reused == [0]
    with pytest.raises(CacheError, match="must not live inside the library"):
        build_cache(report, library / "cache", codec=codec(), encoder=StarterEncoder(),
                    sample_rate=16000)


DISK_FULL = """
import resource, signal, sys
from pathlib import Path
import torch
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from engine.codec import StarterCodec
from engine.features import StarterEncoder
from trainer.cache import CacheError, build_cache
from trainer.data import scan_library
torch.manual_seed(0)
report = scan_library(sys.argv[1], window_seconds=2.0)
codec, encoder = StarterCodec().eval(), StarterEncoder()
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))  # the disk is "full" for big files
try:
    build_cache(report, Path(sys.argv[2]), codec=codec, encoder=encoder, sample_rate=16000,
                files_per_shard=1)
except CacheError as err:
    print(err)
    sys.exit(3)
"""


def test_disk_full_while_caching_keeps_finished_shards(library, tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, str(library), str(cache)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "no space left to write shard-00004.safetensors" in proc.stdout  # clip_a: 8 windows
    assert "the 4 finished shards are kept" in proc.stdout
    assert sorted(p.name for p in cache.iterdir()) == [f"shard-0000{i}.safetensors" for i in range(4)]
    summary = build_cache(scan_library(library, window_seconds=2.0), cache, codec=codec(),
                          encoder=StarterEncoder(), sample_rate=16000, files_per_shard=1)
    assert summary.reused == [0, 1, 2, 3] and summary.computed == [4, 5]
