"""Fuzzing the command line (hypothesis): random arguments and files, real commands. Every run
ends in exit 0, or in a non-zero exit with one `error:` line on stderr, no traceback, and no file
left in the output folder."""
from __future__ import annotations

import contextlib
import io
import itertools
import os
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmjt_plugin.cli import main
from tests.media_factory import make_video
from tests.test_pipeline import bundle  # noqa: F401  (the small random-weight bundle fixture)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "timelines"
# `make test` replays the same 100 cases a command (derandomized: CI cannot flake); a longer hunt:
# MFMJT_FUZZ_EXAMPLES=2000 pytest tests/test_cli_fuzz.py (random cases each time)
HUNT = int(os.environ.get("MFMJT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=HUNT or 100, deadline=None, derandomize=not HUNT,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
COUNTER = itertools.count()
RUNS = {"cases": 0, "exit_0": 0, "errors": 0}

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-2 ** 70, max_value=2 ** 70).map(str),
    st.sampled_from(["0", "1", "2", "3.5", "1e400", "-0", "nan", "inf", "", " ", "abc",
                     "01:00:00:05", "00:00:01;10", "99:99:99:99", "1:2:3:4"]),
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-inputs")
    movie = make_video(root / "movie.mp4", fps=Fraction(25), frames=75, width=64, height=64,
                       timecode="10:00:00:00")
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    empty = root / "empty.mov"
    empty.write_bytes(b"")
    folder = root / "a-folder.mp4"
    folder.mkdir()
    return {"movie": movie, "corrupt": corrupt, "empty": empty, "folder": folder,
            "missing": root / "missing.mp4"}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exited:  # argparse: usage errors
            code = exited.code if isinstance(exited.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def check(code: int, stderr: str, out_dir: Path | None) -> None:
    RUNS["cases"] += 1
    assert "Traceback" not in stderr, stderr
    if code == 0:
        RUNS["exit_0"] += 1
        return
    RUNS["errors"] += 1
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), stderr
    if out_dir is not None and out_dir.exists():
        assert [p.name for p in out_dir.rglob("*") if p.is_file()] == []


@FUZZ
@given(video=st.sampled_from(["movie", "movie", "movie", "corrupt", "empty", "folder", "missing"]),
       start=st.none() | numbers, end=st.none() | numbers, seed=st.none() | numbers,
       steps=st.none() | numbers, guidance=st.none() | numbers, takes=st.none() | numbers,
       mode=st.none() | st.sampled_from(["scaled", "standard", "none", "fast", ""]),
       prompt=st.none() | st.text(max_size=40))
def test_generate(tmp_path, files, bundle, video, start, end, seed, steps, guidance, takes,  # noqa: F811
                  mode, prompt):
    out_dir = tmp_path / f"out{next(COUNTER)}"
    argv = ["generate", str(files[video]), "--out", str(out_dir), "--bundle", str(bundle),
            "--json", "--no-preview"]
    for flag, value in (("--start", start), ("--end", end), ("--seed", seed), ("--steps", steps),
                        ("--guidance", guidance), ("--takes", takes), ("--mode", mode),
                        ("--prompt", prompt)):
        if value is not None:
            argv += [f"{flag}={value}"]
    code, _, stderr = run_cli(argv)
    check(code, stderr, out_dir)


@FUZZ
@given(timeline=st.sampled_from(["premiere_example.xml", "simple_cut.otio", "nested_example.otio",
                                 "screening_example.edl", "fcpx_example.fcpxml", "transition.otio",
                                 "missing.otio"]),
       pick=st.sampled_from(["--all", "--clip", "--track", "--marker", "--in"]),
       value=numbers, rate=st.none() | numbers, sequence=st.none() | numbers,
       fmt=st.none() | st.sampled_from(["otio", "xml", "fcpxml", "aaf", "mlt", "wav"]))
def test_timeline_foley(tmp_path, bundle, timeline, pick, value, rate, sequence, fmt):  # noqa: F811
    out_dir = tmp_path / f"media{next(COUNTER)}"
    argv = ["timeline", "foley", str(SHARED / timeline), "--bundle", str(bundle),
            "--media-out", str(out_dir), "--timeline-out", str(out_dir), "--json"]
    argv += ["--all"] if pick == "--all" else ["--in", value, "--out", value] if pick == "--in" \
        else [f"{pick}={value}"]
    for flag, given_value in (("--rate", rate), ("--sequence", sequence), ("--format", fmt)):
        if given_value is not None:
            argv += [f"{flag}={given_value}"]
    code, _, stderr = run_cli(argv)
    check(code, stderr, out_dir)


@FUZZ
@given(command=st.sampled_from(["inspect", "scan"]), target=st.sampled_from(list(SHARED.iterdir())),
       window=st.none() | numbers, rate=st.none() | numbers)
def test_inspect_and_scan(command, target, window, rate):
    argv = ["timeline", "inspect", str(target), "--json"] if command == "inspect" else \
        ["train", "scan", str(target), "--json"]
    if command == "inspect" and rate is not None:
        argv.append(f"--rate={rate}")
    if command == "scan" and window is not None:
        argv.append(f"--window={window}")
    code, _, stderr = run_cli(argv)
    check(code, stderr, None)


def test_zz_fuzzing_ran_its_cases():
    """The closing note quotes these counts (run after the three fuzz tests above)."""
    print(f"fuzzed {RUNS['cases']} command lines: {RUNS['exit_0']} exit 0, "
          f"{RUNS['errors']} one-line errors, 0 tracebacks")
    assert RUNS["cases"] >= 300 and RUNS["exit_0"] > 0 and RUNS["errors"] > 0
