"""Official MMAudio files: recognition by MD5 and the network importer (MODEL.md §1, §4, §5).

Official checkpoints are plain state dicts in pickle `.pth` files. They are the only pickles this
product ever reads, only when the user imports them, and always with `weights_only=True`.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import torch

from engine.bundles.format import file_digest
from engine.errors import UserError
from engine.model import DELTA_EMBEDDER_PREFIX, LEGACY_KEYS, MFMJT, PRESETS, build_network
from engine.model.network import new_delta_embedder

LICENCE_WEIGHTS = "CC-BY-NC-4.0"


@dataclass(frozen=True)
class OfficialFile:
    kind: str  # network, vae, vocoder, synchformer
    name: str  # preset or component name
    filename: str
    licence: str = LICENCE_WEIGHTS


OFFICIAL_FILES: dict[str, OfficialFile] = {
    "af93cde404179f58e3919ac085b8033b": OfficialFile("network", "small_16k", "mmaudio_small_16k.pth"),
    "babd74c884783d13701ea2820a5f5b6d": OfficialFile("network", "small_44k", "mmaudio_small_44k.pth"),
    "5a56b6665e45a1e65ada534defa903d0": OfficialFile("network", "medium_44k", "mmaudio_medium_44k.pth"),
    "fed96c325a6785b85ce75ae1aafd2673": OfficialFile("network", "large_44k", "mmaudio_large_44k.pth"),
    "01ad4464f049b2d7efdaa4c1a59b8dfe": OfficialFile("network", "large_44k_v2", "mmaudio_large_44k_v2.pth"),
    "69f56803f59a549a1a507c93859fd4d7": OfficialFile("vae", "v1-16", "v1-16.pth"),
    "fab020275fa44c6589820ce025191600": OfficialFile("vae", "v1-44", "v1-44.pth"),
    "eeaf372a38a9c31c362120aba2dde292": OfficialFile("vocoder", "bigvgan_v1_16k", "best_netG.pt"),
    "5b2f5594b0730f70e41e549b7c94390c": OfficialFile("synchformer", "synchformer",
                                                     "synchformer_state_dict.pth"),
}


class OfficialImportError(UserError):
    """An official file that cannot be imported; the message names the file and what was expected."""


def md5_file(path: Path) -> str:
    """MD5, the checksum MMAudio publishes for its files."""
    return file_digest(path, "md5")


def recognise(path: Path | str, table: Mapping[str, OfficialFile] = OFFICIAL_FILES
              ) -> Optional[OfficialFile]:
    """The official file with this MD5, or None."""
    return table.get(md5_file(Path(path)))


def load_official_state(path: Path | str) -> dict[str, torch.Tensor]:
    """Read an official `.pth` with torch.load(weights_only=True); clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise OfficialImportError(f"{path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "refused"
        raise OfficialImportError(f"{path}: not a plain weights file (weights_only refused it: "
                           f"{first}); only official MMAudio .pth files can be imported") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise OfficialImportError(f"{path}: cannot be read as a PyTorch checkpoint ({err}); the file "
                           f"may be truncated: download it again") from None
    if isinstance(state, Mapping) and isinstance(state.get("generator"), Mapping):
        state = state["generator"]  # BigVGAN training checkpoints: {'generator': ..., ...}
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OfficialImportError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return dict(state)


def _fresh_delta_embedder(network: MFMJT, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Δ-embedder weights as a new network initialises them (zero output layer)."""
    embedder = new_delta_embedder(network.config)
    return {DELTA_EMBEDDER_PREFIX + k: v.to(dtype) for k, v in embedder.state_dict().items()}


def _matching_presets(state: Mapping[str, torch.Tensor]) -> list[str]:
    matches = []
    for name in PRESETS:
        if name == "tiny":
            continue
        expected = build_network(name, device="meta").state_dict()
        if all(k in state and tuple(state[k].shape) == tuple(v.shape)
               for k, v in expected.items() if not k.startswith(DELTA_EMBEDDER_PREFIX)):
            matches.append(name)
    return matches


def import_mmaudio(source: Path | str | Mapping[str, torch.Tensor], preset: str) -> MFMJT:
    """An official MMAudio network as an MFMJT: strict load after adding the zero-initialised
    Δ-embedder; legacy keys dropped; stored dtype preserved."""
    label = str(source) if isinstance(source, (str, Path)) else "state dict"
    state = load_official_state(source) if isinstance(source, (str, Path)) else dict(source)
    for key in LEGACY_KEYS:
        state.pop(key, None)
    network = build_network(preset, device="meta")
    expected = network.state_dict()
    floating = [v.dtype for v in state.values() if v.is_floating_point()]
    dtype = floating[0] if floating else torch.float32
    if not any(k.startswith(DELTA_EMBEDDER_PREFIX) for k in state):
        state.update(_fresh_delta_embedder(network, dtype))
    for key, value in expected.items():
        if key not in state:
            raise OfficialImportError(f"{label}: key {key!r} is missing; not an MMAudio {preset} "
                               f"network checkpoint")
        if tuple(state[key].shape) != tuple(value.shape):
            others = [p for p in _matching_presets(state) if p != preset]
            hint = f"; it looks like a {others[0]} checkpoint" if others else ""
            raise OfficialImportError(f"{label}: key {key!r} has shape {tuple(state[key].shape)}, preset "
                               f"{preset} expects {tuple(value.shape)}{hint}")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise OfficialImportError(f"{label}: unexpected key {unexpected[0]!r}; not an MMAudio {preset} "
                           f"network checkpoint")
    network.load_state_dict(state, strict=True, assign=True)
    return network.eval()
