"""The starter model's build stages refuse to run out of order with one clear line (the full
build is hours on a CPU: the card records it; here only what must never silently happen)."""
import multiprocessing as mp

import pytest
import torch

from engine.errors import UserError
from trainer.build_starter import (DATA_DONE, LATENTS_PENDING, PICTURE_RUN, SHIPPED_RUN,
                                   _waited, build_all, stage_data, stage_export, stage_fit,
                                   stage_picture)


def test_export_without_a_trained_run_names_the_stage_to_run(tmp_path):
    assert SHIPPED_RUN == "run"  # the fit run ships since the ninth pass of issue 14
    with pytest.raises(UserError, match=r"run: no checkpoint to export; run the `fit` stage "
                                        r"first \(python -m trainer.build_starter fit"):
        stage_export(tmp_path, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_the_picture_fine_tune_needs_a_fitted_network(tmp_path):
    with pytest.raises(UserError, match="no fitted network; run the `fit` stage first"):
        stage_picture(tmp_path)


def test_export_without_a_picture_run_names_that_stage(tmp_path):
    with pytest.raises(UserError, match=rf"{PICTURE_RUN}: no checkpoint to export; run the "
                                        r"`picture` stage"):
        stage_export(tmp_path, tmp_path / "bundle", run_name=PICTURE_RUN)


def test_finished_scenes_are_kept_not_written_again(tmp_path, capsys):
    """The cache is keyed by the scenes' files (their mtimes): `all` resumed after its data
    stage must not write them again."""
    synth = tmp_path / "synth" / "train" / "video"
    synth.mkdir(parents=True)
    scene = synth / "train-00000.mp4"
    scene.write_bytes(b"kept")
    (tmp_path / "synth" / DATA_DONE).write_text("{}")
    before = scene.stat().st_mtime_ns
    stage_data(tmp_path)
    assert scene.read_bytes() == b"kept" and scene.stat().st_mtime_ns == before
    assert "kept the scenes" in capsys.readouterr().out


def _exit_at_once(code):
    raise SystemExit(code)


def test_waiting_on_the_other_core_stops_when_it_died():
    context = mp.get_context("spawn")
    event = context.Event()
    other = context.Process(target=_exit_at_once, args=(3,))
    other.start()
    with pytest.raises(SystemExit, match=r"the other core's work ended \(3\) before the cache's "
                                         r"features; .*run `all` again to resume"):
        _waited(event, "the cache's features", other)
    other.join()


def test_waiting_returns_when_the_event_was_set_even_if_its_process_has_ended():
    """The other core sets `features_done` and goes on (or ends, exit 0): that is no failure."""
    context = mp.get_context("spawn")
    event = context.Event()
    other = context.Process(target=_set_and_exit, args=(event,))
    other.start()
    other.join()
    assert other.exitcode == 0 and event.is_set()
    _waited(event, "the cache's features", other)  # returns, does not raise


def _set_and_exit(event):
    event.set()


def test_the_fit_refuses_placeholder_latents(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / LATENTS_PENDING).write_text("")
    with pytest.raises(UserError, match=r"latents are placeholders .*run the `latents` stage"):
        stage_fit(tmp_path)


def test_all_refuses_without_the_evaluator_and_beside_another_all(tmp_path):
    with pytest.raises(UserError, match=r"nothing.safetensors: the evaluator's classifier is "
                                        r"missing .*build_starter classifier"):
        build_all(tmp_path, tmp_path / "bundle", tmp_path / "nothing.safetensors")
    classifier = tmp_path / "classifier.safetensors"
    classifier.write_bytes(b"")
    import fcntl
    with open(tmp_path / "build.lock", "a") as held:  # another `all` holds the folder
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another `all` is building there"):
            build_all(tmp_path, tmp_path / "bundle", classifier)
    assert not (tmp_path / "synth").exists()  # refused before writing anything


def test_features_first_then_latents_gives_the_trained_vaes_latents(tmp_path):
    """`all`'s cache: the features before the VAE is trained (placeholder latents, `fit`
    refuses them), then `latents` puts in the trained VAE's own, features kept; then a `fit`
    on that cache, stopped."""
    from safetensors.torch import save_file

    from engine.codec.starter import StarterCodec
    from trainer.build_starter import _encoding_codec, cached_shards, stage_features, \
        stage_latents
    from trainer.synth.writer import write_split
    write_split(tmp_path / "synth" / "train", "train", 3)
    stage_features(tmp_path)
    assert (tmp_path / "cache" / LATENTS_PENDING).exists()
    placeholder = cached_shards(tmp_path)
    torch.manual_seed(7)  # "the trained VAE": other weights than the placeholder's
    trained = StarterCodec().vae
    (tmp_path / "codec").mkdir()
    save_file({f"vae.{k}": v.contiguous() for k, v in trained.state_dict().items()},
              str(tmp_path / "codec" / "vae.safetensors"))
    stage_latents(tmp_path)
    assert not (tmp_path / "cache" / LATENTS_PENDING).exists()
    shards = cached_shards(tmp_path)
    assert sum(s["latent_mean"].shape[0] for s in shards) == 3
    codec = _encoding_codec(tmp_path)
    from trainer.data import scan_library
    from trainer.data.windows import iter_windows
    report = scan_library(tmp_path / "synth" / "train" / "video", window_seconds=4.0)
    for part, (before, after) in enumerate(zip(placeholder, shards)):
        assert torch.equal(before["clip"], after["clip"]) and torch.equal(before["sync"], after["sync"])
        assert not torch.allclose(before["latent_mean"], after["latent_mean"])
        first = report.items[part::2][0]  # each part's first scene: its shard's first window
        wave = next(iter_windows(first, window_seconds=4.0, sample_rate=16000)).audio
        with torch.no_grad():
            expected = codec.encode(torch.from_numpy(wave)[None]).mean[0]
        torch.testing.assert_close(after["latent_mean"][0], expected, atol=1e-5, rtol=1e-5)
    _an_interrupted_fit_exits_non_zero(tmp_path)


def _an_interrupted_fit_exits_non_zero(out):
    """The `fit` stage alone, stopped (SIGINT, as Ctrl-C): its checkpoint is kept, it says how
    to resume, and its exit status is 130 (interrupted), so a script never goes on to export
    a half-trained network. (On the cache the test above built.)"""
    import os
    import signal
    import subprocess
    import sys
    import time
    from trainer.checkpoint import checkpoint_step, latest_checkpoint
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "trainer.build_starter", "fit", "--out",
                             str(out), "--max-steps", "400"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    board = out / "run" / "tensorboard"
    deadline = time.time() + 120
    while not (board.exists() and any(board.iterdir())) and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.2)
    try:
        time.sleep(2.0)  # inside the training loop, whose handler turns SIGINT into a clean stop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "the network's fit was interrupted at step" in err and "run `fit` again" in err
    stopped = checkpoint_step(latest_checkpoint(out / "run" / "checkpoints"))
    assert 1 <= stopped < 400
