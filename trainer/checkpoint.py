"""Training checkpoints: everything needed to continue exactly, in one safetensors file.

Model, EMA, optimizer tensors and RNG states are tensors; step, data position, optimizer
hyper-parameters and the network config are JSON metadata. Files are written to a temporary name
and renamed, so a kill during the write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.atomic import atomic_target
from trainer.diskspace import is_out_of_space

PREFIX = "ckpt-"
class CheckpointError(OSError):
    """A checkpoint that could not be written; the previous one is intact."""


@dataclass
class Position:
    step: int
    epoch: int
    index: int


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors = {}
    for param_id, values in state["state"].items():
        for key, value in values.items():
            tensors[f"opt.{param_id}.{key}"] = value.detach().clone().contiguous()
    return tensors, {"param_groups": state["param_groups"]}


def save_checkpoint(out_dir: Path, *, network: torch.nn.Module, ema: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, scheduler, generators: dict[str, torch.Generator],
                    position: Position, extra: dict, keep: int = 2) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in network.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().contiguous() for k, v in ema.items()})
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors.update({f"rng.{name}": g.get_state() for name, g in generators.items()})
    metadata = {"position": json.dumps(position.__dict__), "optimizer": json.dumps(opt_meta),
                "scheduler": json.dumps(scheduler.state_dict()), "extra": json.dumps(extra)}
    final = out_dir / f"{PREFIX}{position.step:08d}.safetensors"
    try:
        with atomic_target(final, overwrite=True, fsync=True) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
    except Exception as err:  # safetensors reports I/O failures as its own error type
        if is_out_of_space(err):
            previous = latest_checkpoint(out_dir)
            raise CheckpointError(errno.ENOSPC, f"{out_dir}: no space left to write {final.name} "
                                  f"({err}); free some space and run again with --resume; "
                                  f"{'the previous checkpoint ' + previous.name + ' is intact' if previous else 'no earlier checkpoint exists'}") from None
        raise
    # rotation: only this run's earlier checkpoints, never the one just written
    earlier = [p for p in sorted(out_dir.glob(f"{PREFIX}*.safetensors"))
               if checkpoint_step(p) is not None and checkpoint_step(p) < position.step]
    for old in earlier[:max(0, len(earlier) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return final


def checkpoint_step(path: Path) -> Optional[int]:
    """The training step a checkpoint file was written at (None for a name of another kind)."""
    digits = path.name[len(PREFIX):].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Temporary files a killed process left (`.ckpt-*.partial` from an interrupted write);
    called when a run starts, so a kill -9 does not leave them forever."""
    stale = sorted(Path(out_dir).glob(f".{PREFIX}*.partial")) if Path(out_dir).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def latest_checkpoint(out_dir: Path) -> Optional[Path]:
    found = sorted(Path(out_dir).glob(f"{PREFIX}*.safetensors"))
    return found[-1] if found else None


def load_checkpoint(path: Path, *, network: torch.nn.Module, ema: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, scheduler,
                    generators: dict[str, torch.Generator]) -> tuple[Position, dict]:
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                            strict=True)
    for key in ema:
        ema[key].copy_(tensors[f"ema.{key}"])
    opt_state: dict = {"state": {}, "param_groups": json.loads(meta["optimizer"])["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, param_id, name = key.split(".", 2)
            opt_state["state"].setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict(opt_state)
    scheduler.load_state_dict(json.loads(meta["scheduler"]))
    for name, generator in generators.items():
        generator.set_state(tensors[f"rng.{name}"])
    return Position(**json.loads(meta["position"])), json.loads(meta["extra"])
