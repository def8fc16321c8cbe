"""The starter model's build stages refuse to run out of order with one clear line (the full
build is hours on a CPU: the card records it; here only what must never silently happen)."""
import multiprocessing as mp

import pytest

from engine.errors import UserError
from trainer.build_starter import (DATA_DONE, PICTURE_RUN, SHIPPED_RUN, _waited, stage_data,
                                   stage_export, stage_picture)


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


def test_waiting_returns_once_the_event_is_set():
    context = mp.get_context("spawn")
    event = context.Event()
    event.set()
    _waited(event, "anything", None)  # set already: the process is never asked
