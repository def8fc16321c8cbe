"""Which torch device runs the models (issue 16): `auto` takes CUDA when torch sees a GPU, then
Apple's MPS, else the CPU; an explicit device that is not there is refused in one line before any
model loads. Noise is drawn on the CPU whatever the device (engine/sampling.draw_noise), so a seed
gives the same take on any of them, up to the device's arithmetic."""
from __future__ import annotations

import os

import torch

from engine.errors import UserError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` / `cpu` / `cuda` / `cuda:N` / `mps` -> a device that exists here."""
    text = "auto" if name is None else str(name).strip().lower()
    if text == "auto":
        if not torch.cuda.is_available():
            return torch.device("mps") if _mps_available() else torch.device("cpu")
        text = "cuda"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UserError(f"device {name!r} is not one of {DEVICE_CHOICES}", field="device") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"device {name!r}: this torch sees no CUDA GPU (driver missing, or a "
                            f"CPU-only torch); choose auto or cpu", field="device")
        # under torchrun each process takes its own GPU of the node (LOCAL_RANK)
        index = int(os.environ.get("LOCAL_RANK", 0)) if device.index is None else device.index
        if index >= count:
            raise UserError(f"device {name!r}: there are {count} CUDA GPUs here (cuda:0 to "
                            f"cuda:{count - 1}); choose one of them", field="device")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise UserError(f"device {name!r}: Apple's MPS is not available here; choose auto "
                            f"or cpu", field="device")
        return device
    raise UserError(f"device {name!r} is not one of {DEVICE_CHOICES}", field="device")


def network_autocast(device: torch.device) -> torch.dtype | None:
    """The network's autocast type: bfloat16 on a CUDA GPU that has it (the relative error
    against fp32 is in docs/PERFORMANCE.md), float32 (None) elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def is_out_of_memory(err: BaseException) -> bool:
    """A GPU allocator failure (torch's OutOfMemoryError, or the MPS backend's RuntimeError)."""
    if isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def out_of_memory_error(device: torch.device) -> UserError:
    elsewhere = "" if device.type == "cpu" else ", or the cpu device"
    return UserError(f"the {device.type.upper()} device ran out of memory; try a shorter range "
                     f"or fewer takes (or best-of candidates){elsewhere}", field="device")


__all__ = ["DEVICE_CHOICES", "is_out_of_memory", "network_autocast", "out_of_memory_error",
           "resolve_device"]
