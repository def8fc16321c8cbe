"""`mfmjt doctor`: the first thing support asks for. What this machine has (torch build, GPU and
driver, disk, memory, PortAudio, melt, weights), whether those fit together, and for each problem
the command that fixes it. `--json` for bug reports.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGES = ("torch", "torchaudio", "torchvision", "numpy", "safetensors", "av",
            "opencv-python-headless", "open_clip_torch", "PyQt6", "sounddevice", "opentimelineio",
            "OpenTimelineIO-Plugins", "pyloudnorm", "platformdirs", "tqdm")

# The oldest NVIDIA Linux driver each CUDA major version runs on (minor-version compatibility:
# the wheels bundle their CUDA runtime, so the driver only has to reach the major's minimum).
MIN_DRIVER_FOR_CUDA = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
LOW_DISK_MB = 2048
LOW_MEMORY_MB = 4096
REINSTALL = "make install (or bash installers/install.sh)"


@dataclass
class Check:
    name: str
    value: str
    status: str = "ok"       # ok | warning (works, with less) | problem (something will fail)
    fix: str = ""


def _system() -> str:
    return platform.system()


def _install_hint(linux: str, mac: str) -> str:
    return mac if _system() == "Darwin" else linux


# ------------------------------------------------------------------ torch, GPU, driver
def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def nvidia_smi_gpus() -> list[dict[str, str]] | None:
    """GPUs as nvidia-smi reports them, or None when there is no nvidia-smi (no NVIDIA driver)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return [{"error": f"nvidia-smi did not answer ({err})"}]
    if out.returncode != 0:
        said = (out.stdout + out.stderr).strip().splitlines()
        return [{"error": said[-1] if said else f"exit status {out.returncode}"}]
    gpus = []
    for line in out.stdout.strip().splitlines():
        name, driver, memory = (part.strip() for part in line.rsplit(",", 2))
        gpus.append({"name": name, "driver": driver, "memory_mib": memory})
    return gpus


def gpu_checks(gpus: list[dict[str, str]] | None, torch_cuda: str | None, cuda_available: bool,
               torch_device_name: str | None, system: str = "Linux") -> list[Check]:
    """Whether the GPU, its driver and the installed torch build fit together (pure: tested)."""
    if gpus is None:
        if torch_cuda and cuda_available:  # e.g. WSL or a container without nvidia-smi
            return [Check("gpu", f"{torch_device_name} (no nvidia-smi to read the driver)")]
        return [Check("gpu", "no NVIDIA GPU or driver seen (nvidia-smi not found); "
                      "the engine runs on the CPU" + (" or Apple's MPS" if system == "Darwin" else ""))]
    if gpus and "error" in gpus[0]:
        return [Check("gpu", f"nvidia-smi failed: {gpus[0]['error']}", "problem",
                      "reinstall or reload the NVIDIA driver (reboot after a driver update), "
                      "then check `nvidia-smi`")]
    if not gpus:
        return [Check("gpu", "nvidia-smi lists no GPU", "warning",
                      "check that the GPU is enabled (BIOS, container --gpus flag)")]
    first = gpus[0]
    described = ", ".join(f"{g['name']} ({int(float(g['memory_mib'])) // 1024} GiB)" for g in gpus)
    rows = [Check("gpu", described), Check("nvidia driver", first["driver"])]
    if not torch_cuda:
        rows.append(Check("gpu vs torch", "torch is a CPU build, so the GPU is not used", "problem",
                          f"{REINSTALL}: the lock installs the CUDA build on Linux"))
        return rows
    major = _version_tuple(torch_cuda)[0]
    needed = MIN_DRIVER_FOR_CUDA.get(major)
    if needed and _version_tuple(first["driver"]) < _version_tuple(needed):
        rows.append(Check(
            "gpu vs torch", f"driver {first['driver']} is older than {needed}, which torch's "
            f"CUDA {torch_cuda} needs", "problem",
            f"update the NVIDIA driver to {needed.split('.')[0]} or newer "
            f"(Ubuntu: sudo ubuntu-drivers install; others: your distribution's nvidia-driver package)"))
    elif not cuda_available:
        rows.append(Check("gpu vs torch", "the driver is new enough but torch cannot use the GPU",
                          "problem", "reboot after a driver update; in a container pass the GPU "
                          "(--gpus all); check CUDA_VISIBLE_DEVICES"))
    else:
        rows.append(Check("gpu vs torch", f"ok: torch CUDA {torch_cuda} on driver {first['driver']}"))
    return rows


def _torch_rows() -> list[Check]:
    import torch
    cuda = torch.version.cuda
    hip = getattr(torch.version, "hip", None)
    build = f"CUDA {cuda}" if cuda else (f"ROCm {hip}" if hip else "CPU")
    rows = [Check("torch build", f"{torch.__version__} ({build})"),
            Check("torch threads", str(torch.get_num_threads()))]
    available = bool(cuda) and torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if available else None
    rows += gpu_checks(nvidia_smi_gpus(), cuda, available, name, _system())
    # what `--device auto` (every command's default) picks: the same function decides
    from engine.devices import network_autocast, resolve_device
    device = resolve_device("auto")
    if device.type == "cuda":
        precision = "bf16 network" if network_autocast(device) else "fp32 (no bf16 on this GPU)"
        rows.append(Check("device (auto)", f"{device}: {name} ({precision})"))
    elif device.type == "mps":
        rows.append(Check("device (auto)", "mps (Apple GPU, fp32)"))
    else:
        rows.append(Check("device (auto)", "cpu (fp32)"))
    return rows


def _torch_set_rows() -> list[Check]:
    from engine import compiled_extensions
    found = compiled_extensions.problems()
    if not found:
        return [Check("torch set", "torch, torchaudio, torchvision load together "
                      "(torchaudio library, torchvision ops)")]
    return [Check(f"torch set: {p.component}", p.message, "problem", REINSTALL) for p in found]


def _lock_rows() -> list[Check]:
    from mfmjt_plugin import lockfile
    found = lockfile.environment_drift()
    if found is None:
        return []
    if not found:
        return [Check("environment", "matches installers/requirements.lock")]
    shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
    return [Check("environment", f"differs from the lock: {shown}", "problem", REINSTALL)]


# ------------------------------------------------------------------ machine
def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_check(name: str, path: Path, free_bytes: int | None = None) -> Check:
    free = shutil.disk_usage(_existing_ancestor(path)).free if free_bytes is None else free_bytes
    mb = free // (1024 * 1024)
    value = f"{mb / 1024:.1f} GiB free at {path}"
    if mb < LOW_DISK_MB:
        return Check(name, value, "warning",
                     f"free space there, or move it with {'MFMJT_DATA_DIR' if 'data' in name else 'MFMJT_CACHE_DIR'}")
    return Check(name, value)


def _memory_mb() -> tuple[int, int] | None:
    """(total, available) in MB from /proc/meminfo or sysconf; None where neither exists."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(info["MemTotal"].split()[0]) // 1024, int(info["MemAvailable"].split()[0]) // 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        return total, total
    except (ValueError, OSError, AttributeError):
        return None


def memory_check(memory: tuple[int, int] | None) -> Check:
    if memory is None:
        return Check("memory", "unknown")
    total, available = memory
    value = f"{available / 1024:.1f} GiB available of {total / 1024:.1f} GiB"
    if available < LOW_MEMORY_MB:
        return Check("memory", value, "warning", "close other programs: generation on the CPU "
                     f"wants about {LOW_MEMORY_MB // 1024} GiB")
    return Check("memory", value)


def _portaudio() -> Check:
    try:
        import sounddevice
        return Check("portaudio", sounddevice.get_portaudio_version()[1])
    except OSError as err:  # sounddevice raises OSError when libportaudio is absent
        return Check("portaudio", f"missing ({err}); no playback", "warning",
                     _install_hint("sudo apt-get install libportaudio2", "brew install portaudio"))


def _melt() -> Check:
    melt = shutil.which("melt")
    if melt is None:
        return Check("melt", "missing: MLT XML exports cannot be previewed or render-tested",
                     "warning", _install_hint("sudo apt-get install melt", "brew install mlt"))
    try:
        out = subprocess.run([melt, "--version"], capture_output=True, text=True, timeout=20)
        first = (out.stdout + out.stderr).strip().splitlines()
        return Check("melt", f"{first[0] if first else 'present'} ({melt})")
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("melt", f"{melt} does not run ({err})", "warning",
                     _install_hint("sudo apt-get install --reinstall melt", "brew reinstall mlt"))


def _weights_and_starter() -> list[Check]:
    from engine.bundles.registry import WeightRegistry
    from engine.paths import starter_bundle_dir, weights_dir
    registry = WeightRegistry(weights_dir())
    try:
        entries = registry.entries()
    except (OSError, ValueError, TypeError) as err:
        rows = [Check("weight registry", f"{registry.root}: index unreadable ({err})", "problem",
                      f"move {registry.root / 'index.json'} aside and re-import: mfmjt weights import PATH...")]
    else:
        absent = [e.key for e in entries if not registry.path_of(e).is_file()]
        value = f"{registry.root} ({len(entries)} entries" + \
            (f": {', '.join(e.key for e in entries)})" if entries else ")")
        rows = [Check("weight registry", value)]
        if absent:
            rows.append(Check("weight files", f"missing: {', '.join(absent)}", "problem",
                              "mfmjt weights verify, then re-import or remove the missing entries "
                              "(mfmjt weights remove KIND NAME)"))
    starter = starter_bundle_dir()
    if (starter / "manifest.json").is_file():
        rows.append(Check("starter bundle", f"present: {starter}"))
    else:
        rows.append(Check("starter bundle", f"missing: {starter}", "problem",
                          "python -m trainer.build_starter all (or reinstall the package)"))
    return rows


def collect() -> list[Check]:
    from engine import __version__
    from engine.paths import cache_dir, data_dir
    rows = [Check("mfmjt-foley", __version__),
            Check("python", f"{platform.python_version()} ({sys.executable})"),
            Check("platform", platform.platform())]
    rows += _torch_rows()
    rows += _torch_set_rows()
    rows += _lock_rows()
    from engine.compiled_extensions import installed_version
    for name in PACKAGES:
        have = installed_version(name)
        rows.append(Check(name, have) if have else Check(name, "missing", "problem", REINSTALL))
    rows += [disk_check("disk (data)", data_dir()), disk_check("disk (cache)", cache_dir()),
             memory_check(_memory_mb()), _portaudio(), _melt()]
    rows += _weights_and_starter()
    return rows


def report(rows: list[Check]) -> dict:
    from engine import __version__
    return {"mfmjt_foley": __version__, "checks": [asdict(row) for row in rows],
            "problems": sum(row.status == "problem" for row in rows),
            "warnings": sum(row.status == "warning" for row in rows)}


def run(*, as_json: bool = False) -> int:
    rows = collect()
    if as_json:
        print(json.dumps(report(rows), indent=2))
    else:
        width = max(len(row.name) for row in rows)
        for row in rows:
            mark = {"ok": "", "warning": "  [warning]", "problem": "  [PROBLEM]"}[row.status]
            print(f"{row.name:<{width}}  {row.value}{mark}")
            if row.fix:
                print(f"{'':<{width}}    fix: {row.fix}")
        flagged = [row for row in rows if row.status != "ok"]
        if flagged:
            print(f"\n{sum(r.status == 'problem' for r in flagged)} problem(s), "
                  f"{sum(r.status == 'warning' for r in flagged)} warning(s); the fix is under each")
        else:
            print("\nall checks passed")
    return 1 if any(row.status == "problem" for row in rows) else 0
