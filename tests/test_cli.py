"""The `mfmjt` command and the installer, run for real."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mfmjt_plugin.cli import main

ROOT = Path(__file__).resolve().parents[1]
MFMJT = Path(sys.executable).parent / "mfmjt"


def test_version_via_console_script():
    out = subprocess.run([str(MFMJT), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("mfmjt-foley 0.1.0")


def test_toy_demo_trains_both_objectives_and_prints_both_models(capsys):
    assert main(["demo", "--toy", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert "MeanFlow, 1 step" in out and "flow matching, 1 Euler" in out
    assert "closer to the modes than one-step flow matching" in out


def test_demo_rejects_bad_steps(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--toy", "--steps", "0"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == ("error: argument --steps: must be from 1 to 1000000, got 0; "
                                       "see `mfmjt demo --help`\n")


