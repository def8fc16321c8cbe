"""Starting points and results of training: a new network with the cache's latent statistics, and
the EMA weights of a checkpoint exported as a bundle with provenance."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.bundles import save_bundle
from engine.errors import UserError
from engine.model import MFMJT, NetworkConfig, build_network
from trainer.cache import STATS_FILE


def new_network(preset: str, cache_dir: Path | str, **overrides) -> MFMJT:
    """A fresh network whose latent normalisation is the cache's per-channel statistics."""
    network = build_network(preset, **overrides)
    stats = load_file(str(Path(cache_dir) / STATS_FILE))
    if stats["mean"].numel() != network.config.latent_dim:
        raise UserError(f"the cache's latents have {stats['mean'].numel()} channels, preset "
                        f"{preset} expects {network.config.latent_dim}; cache the library "
                        f"with a bundle of that preset's codec", field="data")
    with torch.no_grad():
        network.latent_mean.copy_(stats["mean"].view(1, 1, -1))
        network.latent_std.copy_(stats["std"].clamp_min(1e-4).view(1, 1, -1))
    return network


def export_checkpoint(checkpoint: Path | str, out: Path | str, *, preset: str,
                      data_summary: Optional[dict] = None, codec: Optional[dict] = None,
                      encoders: Optional[dict] = None, licence: str = "proprietary",
                      extra_from=None, extra_files: Optional[dict] = None,
                      defaults: Optional[dict] = None, provenance_extra: Optional[dict] = None,
                      weights: str = "ema") -> Path:
    """Write the checkpoint's EMA weights as a new bundle (MeanFlow mode). `extra_from`: a bundle
    whose codec / encoder files are carried over unchanged."""
    checkpoint = Path(checkpoint)
    with safe_open(str(checkpoint), framework="pt") as fh:
        meta = fh.metadata()
        ema = {k[4:]: fh.get_tensor(k) for k in fh.keys() if k.startswith("ema.")}
        model = {k[6:]: fh.get_tensor(k) for k in fh.keys() if k.startswith("model.")}
    extra = json.loads(meta["extra"])
    position = json.loads(meta["position"])
    config = NetworkConfig.from_dict(extra["config"])
    with torch.device("meta"):
        network = MFMJT(config)
    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}")
    state = {k: (ema.get(k, v) if weights == "ema" else v).to(v.dtype) for k, v in model.items()}
    network.load_state_dict(state, strict=True, assign=True)
    provenance = {"recipe": extra.get("recipe"), "steps": position["step"],
                  "checkpoint": checkpoint.name, "weights": weights,
                  "data": data_summary or {}, **(provenance_extra or {})}
    extra = dict(extra_from.extra) if extra_from is not None else {}
    extra.update(extra_files or {})
    return save_bundle(out, network, preset=preset, mode="meanflow", codec=codec,
                       encoders=encoders, provenance=provenance, licence=licence,
                       extra=extra or None, defaults=defaults)


def export_lora_checkpoint(checkpoint: Path | str, out: Path | str, init_bundle, *, rank: int,
                           preset: str, **kwargs) -> Path:
    """A LoRA run: rebuild base + adapters, load the EMA weights, merge, save a plain bundle."""
    from engine.bundles import save_bundle
    from trainer.lora import add_lora, merge_lora
    network = init_bundle.network
    lora = add_lora(network, rank=rank, alpha=2 * rank)
    with safe_open(str(checkpoint), framework="pt") as fh:
        meta = fh.metadata()
        ema = {k[4:]: fh.get_tensor(k) for k in fh.keys() if k.startswith("ema.")}
        model = {k[6:]: fh.get_tensor(k) for k in fh.keys() if k.startswith("model.")}
    network.load_state_dict({k: ema.get(k, v).to(v.dtype) for k, v in model.items()}, strict=True)
    merged = merge_lora(lora)
    extra = json.loads(meta["extra"])
    provenance = {"recipe": extra.get("recipe"), "steps": json.loads(meta["position"])["step"],
                  "checkpoint": Path(checkpoint).name, "weights": "ema", "lora_rank": rank,
                  "data": kwargs.get("data_summary") or {}}
    extra_files = dict(kwargs["extra_from"].extra) if kwargs.get("extra_from") else None
    return save_bundle(out, merged, preset=preset, mode="meanflow", codec=kwargs.get("codec"),
                       encoders=kwargs.get("encoders"), provenance=provenance,
                       licence=kwargs.get("licence", "proprietary"), extra=extra_files)
