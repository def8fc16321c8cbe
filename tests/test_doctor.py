"""`mfmjt doctor`: the real report on this machine, and the GPU / driver / torch-build verdicts
that this CPU machine cannot show for real."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from mfmjt_plugin import doctor

MFMJT = Path(sys.executable).parent / "mfmjt"


def _doctor(tmp_path, *args):
    env = dict(os.environ, MFMJT_DATA_DIR=str(tmp_path / "data"), MFMJT_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([str(MFMJT), "doctor", *args], capture_output=True, text=True, env=env)


def test_json_report_on_this_machine(tmp_path):
    out = _doctor(tmp_path, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["problems"] == 0
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU"
    assert checks["torch build"]["value"] == f"{torch.__version__} ({build})"
    assert checks["torch set"]["status"] == "ok"
    assert checks["environment"]["value"] == "matches installers/requirements.lock"
    assert checks["weight registry"]["value"] == f"{tmp_path / 'data' / 'weights'} (0 entries)"
    assert checks["disk (data)"]["value"].endswith(f"free at {tmp_path / 'data'}")
    assert checks["melt"]["value"].startswith("melt 7.")
    assert checks["starter bundle"]["value"].startswith("present: ")
    from engine.devices import resolve_device
    assert checks["device (auto)"]["value"].startswith(str(resolve_device("auto")))
    assert {c["status"] for c in report["checks"]} <= {"ok", "warning"}
    assert all(set(c) == {"name", "value", "status", "fix"} for c in report["checks"])


def test_a_registry_entry_whose_file_is_gone_is_a_problem_with_its_fix(tmp_path):
    weights = tmp_path / "data" / "weights"
    weights.mkdir(parents=True)
    entry = dict(kind="vae", name="v1-16", file="vae-v1-16.safetensors", sha256="0" * 64,
                 source_md5="1" * 32, source_name="v1-16.pth", official=True,
                 licence="CC-BY-NC 4.0", imported_at="2026-12-01T00:00:00Z")
    (weights / "index.json").write_text(json.dumps({"vae-v1-16": entry}))
    out = _doctor(tmp_path)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("weight files"))
    assert lines[at].split(None, 2)[2] == "missing: vae-v1-16  [PROBLEM]"
    assert lines[at + 1].strip() == ("fix: mfmjt weights verify, then re-import or remove the "
                                     "missing entries (mfmjt weights remove KIND NAME)")
    assert "1 problem(s)" in out.stdout


H200 = [{"name": "NVIDIA H200", "driver": "580.95.05", "memory_mib": "143771"}]


def test_gpu_driver_and_cuda_build_that_fit():
    rows = doctor.gpu_checks(H200, "13.0", True, "NVIDIA H200")
    assert [(r.name, r.value, r.status) for r in rows] == [
        ("gpu", "NVIDIA H200 (140 GiB)", "ok"), ("nvidia driver", "580.95.05", "ok"),
        ("gpu vs torch", "ok: torch CUDA 13.0 on driver 580.95.05", "ok")]


def test_driver_too_old_for_the_cuda_build():
    old = [dict(H200[0], driver="550.54.14")]
    verdict = doctor.gpu_checks(old, "13.0", False, None)[-1]
    assert verdict.status == "problem"
    assert verdict.value == "driver 550.54.14 is older than 580.65.06, which torch's CUDA 13.0 needs"
    assert verdict.fix.startswith("update the NVIDIA driver to 580 or newer")
    # the same driver is fine for a CUDA 12 build
    assert doctor.gpu_checks(old, "12.8", True, "NVIDIA H200")[-1].status == "ok"


def test_gpu_with_a_cpu_build_of_torch():
    verdict = doctor.gpu_checks(H200, None, False, None)[-1]
    assert (verdict.status, verdict.value) == ("problem", "torch is a CPU build, so the GPU is not used")
    assert "make install" in verdict.fix


def test_driver_fine_but_torch_cannot_reach_the_gpu():
    verdict = doctor.gpu_checks(H200, "13.0", False, None)[-1]
    assert verdict.status == "problem" and "--gpus all" in verdict.fix


def test_no_gpu_is_not_a_problem():
    (row,) = doctor.gpu_checks(None, "13.0", False, None)
    assert row.status == "ok" and "runs on the CPU" in row.value
    (row,) = doctor.gpu_checks(None, None, False, None, system="Darwin")
    assert row.value.endswith("the engine runs on the CPU or Apple's MPS")


def test_broken_nvidia_smi_is_a_problem():
    (row,) = doctor.gpu_checks([{"error": "NVIDIA-SMI has failed because it couldn't communicate "
                                          "with the NVIDIA driver"}], "13.0", False, None)
    assert row.status == "problem" and row.value.startswith("nvidia-smi failed: NVIDIA-SMI has failed")


def test_low_disk_and_memory_are_warnings_with_fixes(tmp_path):
    low = doctor.disk_check("disk (data)", tmp_path, free_bytes=512 * 1024 * 1024)
    assert (low.status, low.value) == ("warning", f"0.5 GiB free at {tmp_path}")
    assert "MFMJT_DATA_DIR" in low.fix
    assert doctor.disk_check("disk (cache)", tmp_path, free_bytes=50 << 30).status == "ok"
    assert doctor.memory_check((16384, 2048)).status == "warning"
    assert doctor.memory_check((16384, 8192)).value == "8.0 GiB available of 16.0 GiB"
