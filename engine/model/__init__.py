"""The MF-MJT network (MODEL.md §1-2). Public API: build_network, MFMJT, Conditions."""
from __future__ import annotations

import torch

from engine.model.attention import attention, math_attention
from engine.model.conditions import Conditions
from engine.model.config import PRESETS, NetworkConfig, SequenceLengths, preset_config
from engine.model.network import DELTA_EMBEDDER_PREFIX, LEGACY_KEYS, MFMJT, parameter_count


def build_network(preset: str, *, device: torch.device | str | None = None,
                  **overrides) -> MFMJT:
    """Build a network from a named preset; keyword overrides replace config fields.
    device="meta" builds without allocating (parameter counts of the large presets)."""
    config = preset_config(preset, **overrides)
    if device is None:
        return MFMJT(config)
    with torch.device(device):
        return MFMJT(config)


__all__ = ["MFMJT", "Conditions", "NetworkConfig", "PRESETS", "SequenceLengths", "attention",
           "build_network", "math_attention", "parameter_count", "preset_config",
           "DELTA_EMBEDDER_PREFIX", "LEGACY_KEYS"]
