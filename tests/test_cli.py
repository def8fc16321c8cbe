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


def test_doctor_reports_torch_device_packages_and_starter(tmp_path):
    env = dict(os.environ, MFMJT_DATA_DIR=str(tmp_path))
    out = subprocess.run([str(MFMJT), "doctor"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    import torch
    assert f"torch                   {torch.__version__.split('+')[0]}" in text
    assert "device" in text and "portaudio" in text
    assert f"weight registry         {tmp_path / 'weights'} (0 files)" in text
    assert "starter bundle" in text


def test_toy_demo_trains_both_objectives_and_prints_both_models(capsys):
    assert main(["demo", "--toy", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    assert "MeanFlow, 1 step" in out and "flow matching, 1 Euler" in out
    assert "closer to the modes than one-step flow matching" in out


def test_demo_rejects_bad_steps(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--toy", "--steps", "0"])
    assert exc.value.code == 2
    assert "--steps must be >= 1, got 0" in capsys.readouterr().err


def test_installer_is_idempotent():
    """After `make test` bootstrapped .venv, a second run changes nothing and says so."""
    if not (ROOT / ".venv" / ".mfmjt-install-stamp").exists():
        pytest.skip("the suite is not running from the installer's .venv")
    out = subprocess.run(["bash", str(ROOT / "installers" / "install.sh")], capture_output=True,
                         text=True, check=True)
    assert "environment up to date" in out.stdout
    assert "installing mfmjt-foley" not in out.stdout
