"""One error path: every user mistake is one line with the fix, found before any work; numbers are
checked when read; concurrent runs and Ctrl-C leave nothing half-done; `generate` counts in the
source's timecode."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from engine.media.bwf import OUTPUT_RATE, read_bwf
from mfmjt_plugin.cli import main
from tests.media_factory import make_video
from tests.test_pipeline import bundle  # noqa: F401  (the small random-weight bundle fixture)

MFMJT = Path(sys.executable).parent / "mfmjt"


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """4 s at 25 fps with a camera timecode track starting at 01:00:00:00."""
    return make_video(tmp_path_factory.mktemp("tc") / "cam.mp4", fps=Fraction(25), frames=100,
                      width=64, height=64, timecode="01:00:00:00")


def _generate(capsys, *args):
    code = main(["generate", *args])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("args, message", [
    (["--start", "nan"], "argument --start: must be a finite number, got 'nan' (seconds, or a "
                         "timecode HH:MM:SS:FF)"),
    (["--start", "1e400"], "argument --start: must be a finite number, got '1e400' (seconds, or "
                           "a timecode HH:MM:SS:FF)"),
    (["--end", "-2"], "argument --end: must be >= 0, got -2 (seconds, or a timecode HH:MM:SS:FF)"),
    (["--seed", "99999999999999999999"], "argument --seed: must be from 0 to 2^64 - 1, got "
                                         "99999999999999999999"),
    (["--seed", "1.5"], "argument --seed: must be a whole number, got '1.5'"),
    (["--steps", "0"], "argument --steps: must be from 1 to 1000, got 0"),
    (["--guidance", "inf"], "argument --guidance: must be a finite number, got 'inf'"),
    (["--guidance", "-1"], "argument --guidance: must be >= 0, got -1"),
    (["--takes", "0"], "argument --takes: must be from 1 to 64, got 0"),
])
def test_bad_numbers_are_one_line_at_parse_time(tmp_path, capsys, movie, args, message):
    with pytest.raises(SystemExit) as exited:
        main(["generate", str(movie), "--out", str(tmp_path / "out"), *args])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {message}; see `mfmjt generate --help`\n"
    assert not (tmp_path / "out").exists()


def test_best_of_fewer_than_takes_is_one_line_before_any_work(tmp_path, capsys, movie):
    code, err = _generate(capsys, str(movie), "--out", str(tmp_path / "out"), "--takes", "3",
                          "--best-of", "2", "--bundle", str(tmp_path / "no-bundle-needed"))
    # the library names the setting; the command line adds the option that sets it
    assert code == 1 and err == ("error: best-of 2 is fewer than the 3 takes asked for; generate "
                                 "at least as many candidates as takes (--best-of)\n")
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_or_unwritable_fails_before_generating(tmp_path, capsys, movie,
                                                                     bundle):  # noqa: F811
    taken = tmp_path / "takes.wav"
    taken.write_bytes(b"mine")
    code, err = _generate(capsys, str(movie), "--out", str(taken), "--bundle", str(bundle))
    assert (code, err) == (1, f"error: {taken} is a file, not a folder; choose a folder for the "
                              "takes (--out)\n")
    assert taken.read_bytes() == b"mine"
    code, err = _generate(capsys, str(movie), "--out", "/proc/mfmjt-takes", "--bundle", str(bundle))
    assert code == 1 and err.startswith("error: /proc/mfmjt-takes: cannot write there (")
    assert err.endswith("); choose another folder for the takes (--out)\n")


def test_a_range_past_the_end_names_the_end_that_was_asked(tmp_path, capsys, movie, bundle):  # noqa: F811
    code, err = _generate(capsys, str(movie), "--end", "30", "--out", str(tmp_path),
                          "--bundle", str(bundle))
    assert (code, err) == (1, f"error: {movie}: range ends at 30.000 s, past the end of the media "
                              "(4.000 s); shorten the range\n")
    assert list(tmp_path.iterdir()) == []


def test_timecodes_count_in_the_source_timecode_and_takes_carry_it(tmp_path, capsys, movie,
                                                                   bundle):  # noqa: F811
    code = main(["generate", str(movie), "--start", "01:00:01:00", "--end", "01:00:03:05",
                 "--out", str(tmp_path), "--bundle", str(bundle), "--no-preview", "--json",
                 "--seed", str(2 ** 64 - 1)])
    assert code == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert report["range"] == [1.0, 3.2]
    take = read_bwf(report["takes"][0])
    assert take.bext["time_reference"] == 3601 * OUTPUT_RATE  # 01:00:01:00, not 00:00:01:00


def test_a_take_and_its_preview_share_one_version(tmp_path, capsys, movie, bundle):  # noqa: F811
    # another run already holds preview v001 (its takes still being written, say)
    (tmp_path / "cam_foley_preview_v001.mov").write_bytes(b"")
    assert main(["generate", str(movie), "--end", "2", "--out", str(tmp_path),
                 "--bundle", str(bundle)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cam_foley_preview_v001.mov", "cam_foley_preview_v002.mov", "cam_foley_take1_v002.wav"]


def _default_sigint() -> None:
    # a shell running the suite in the background (`make test &`, some CI runners) starts it with
    # SIGINT ignored, and children inherit that: give the command the terminal's default back
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(movie, out, bundle, *extra, env=None):
    return subprocess.Popen([str(MFMJT), "generate", str(movie), "--end", "2", "--out", str(out),
                             "--bundle", str(bundle), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint)


def test_two_runs_into_one_folder_get_their_own_numbers(tmp_path, movie, bundle):  # noqa: F811
    runs = [_spawn(movie, tmp_path, bundle, "--seed", str(seed)) for seed in (1, 2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["cam_foley_preview_v001.mov", "cam_foley_preview_v002.mov",
                     "cam_foley_take1_v001.wav", "cam_foley_take1_v002.wav"]
    seeds = {read_bwf(tmp_path / f"cam_foley_take1_v00{v}.wav").bext["originator_reference"]
             for v in (1, 2)}
    assert seeds == {"take1-seed1", "take1-seed2"}


def test_ctrl_c_says_cancelled_and_leaves_no_takes(tmp_path, movie, bundle):  # noqa: F811
    out = tmp_path / "out"
    run = _spawn(movie, out, bundle)
    time.sleep(2.0)  # inside model loading or generation
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "cancelled"
    assert "Traceback" not in stderr
    leftovers = [p.name for p in out.iterdir()] if out.exists() else []
    assert [n for n in leftovers if n.endswith((".wav", ".mov", ".partial"))] == []


def test_a_read_only_cache_costs_speed_not_the_take(tmp_path, movie, bundle):  # noqa: F811
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_bytes(b"")
    env = dict(os.environ, MFMJT_CACHE_DIR=str(blocked))
    run = _spawn(movie, tmp_path / "out", bundle, "--no-preview", env=env)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: feature cache {blocked / 'features'} not written (Not a "
                        "directory); the picture will be decoded again next time"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cam_foley_take1_v001.wav"]


def test_timecodes_are_checked_and_follow_the_sources_drop_frame(tmp_path, capsys, movie):
    from mfmjt_plugin.cli_types import TimePoint
    ntsc = Fraction(30000, 1001)
    # typed with ':' against a drop-frame source: counted drop-frame, like the source
    assert TimePoint(timecode="01:00:04:12").resolve(ntsc, "01:00:00;00") == Fraction(132 * 1001, 30000)
    assert TimePoint(timecode="00:10:00;00").resolve(ntsc, None) == Fraction(17982 * 1001, 30000)
    with pytest.raises(SystemExit):  # ffmpeg's HH:MM:SS.mmm is not a timecode
        main(["generate", str(movie), "--start", "00:00:01.500", "--out", str(tmp_path)])
    assert capsys.readouterr().err == ("error: argument --start: must be a number, got "
                                       "'00:00:01.500' (seconds, or a timecode HH:MM:SS:FF); see "
                                       "`mfmjt generate --help`\n")
    code, err = _generate(capsys, str(movie), "--start", "01:00:00:99", "--out", str(tmp_path))
    assert (code, err) == (1, "error: timecode '01:00:00:99' is not valid at this movie's rate "
                              "(Frame rate mismatch.  Timecode '01:00:00:99' has frames beyond "
                              "24) (--start/--end)\n")


def test_an_end_before_the_start_and_a_timecode_without_a_track_are_named(tmp_path, capsys, bundle):  # noqa: F811
    plain = make_video(tmp_path / "plain.mp4", fps=Fraction(25), frames=100, width=64, height=64)
    code, err = _generate(capsys, str(plain), "--start", "3", "--end", "1", "--out",
                          str(tmp_path / "o"), "--bundle", str(bundle))
    assert (code, err) == (1, f"error: {plain}: range ends at 1.000 s, not after its start "
                              "(3.000 s); give an end after the start\n")
    code, err = _generate(capsys, str(plain), "--start", "01:00:00:10", "--end", "01:00:02:00",
                          "--out", str(tmp_path / "o"), "--bundle", str(bundle))
    assert (code, err) == (1, f"error: {plain} has no timecode track, so timecodes count from "
                              "00:00:00:00 and 01:00:00:10 lies past its end (4.000 s); give "
                              "the range in seconds (--start/--end)\n")
