"""`mfmjt doctor`: what this machine has, and whether the product can run on it."""
from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("torch", "torchaudio", "torchvision", "numpy", "safetensors", "av",
            "opencv-python-headless", "open_clip_torch", "PyQt6", "sounddevice", "opentimelineio",
            "OpenTimelineIO-Plugins", "pyloudnorm", "platformdirs", "tqdm")


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "MISSING"


def _portaudio() -> str:
    try:
        import sounddevice
        return f"ok ({sounddevice.get_portaudio_version()[1]})"
    except OSError as err:  # sounddevice raises OSError when libportaudio is absent
        return f"MISSING ({err}); install libportaudio2 for playback"


def _torch_device() -> list[tuple[str, str]]:
    import torch
    rows = [("torch threads", str(torch.get_num_threads()))]
    if torch.cuda.is_available():
        rows.append(("device", f"cuda: {torch.cuda.get_device_name(0)} "
                     f"(bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'})"))
    else:
        rows.append(("device", "cpu (no CUDA device visible)"))
    return rows


def _weights_and_starter() -> list[tuple[str, str]]:
    from engine.paths import starter_bundle_dir, weights_dir
    registry = weights_dir()
    entries = sorted(p.name for p in registry.glob("*.safetensors")) if registry.is_dir() else []
    starter = starter_bundle_dir()
    starter_state = "present" if (starter / "manifest.json").is_file() else \
        "missing (rebuild it: python -m trainer.build_starter all)"
    return [("weight registry", f"{registry} ({len(entries)} files)"),
            ("starter bundle", f"{starter_state}: {starter}")]


def collect() -> list[tuple[str, str]]:
    from engine import __version__
    rows = [("mfmjt-foley", __version__),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("platform", platform.platform())]
    rows += _torch_device()
    rows += [(name, _package_version(name)) for name in PACKAGES]
    rows.append(("portaudio", _portaudio()))
    rows += _weights_and_starter()
    return rows


def run() -> int:
    rows = collect()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    missing = [k for k, v in rows if v == "MISSING"]
    if missing:
        print(f"\nmissing packages: {', '.join(missing)}; run `make install` (installers/install.sh)")
        return 1
    return 0
