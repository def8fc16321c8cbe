"""The model bundle: a folder with manifest.json and safetensors files (ARCHITECTURE.md contracts).

manifest.json holds the format version, the network preset and full config, the latent statistics,
codec and encoder descriptors, training provenance, the licence, and the sha256 of every file.
The network config is also stored in the safetensors metadata, so a lone file still explains itself.
Nothing here reads or writes pickle.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.atomic import atomic_directory
from engine.errors import UserError
from engine.model import MFMJT, NetworkConfig

FORMAT_NAME = "mfmjt-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
NETWORK_FILE = "network.safetensors"
MODES = ("meanflow", "flow_matching")
# sampling settings by mode, for bundles that record none: one MeanFlow step (CFG-scaled), and
# MMAudio's own for its flow-matching weights (25 Euler steps, standard CFG 4.5)
MODE_DEFAULTS = {"meanflow": {"guidance": 1.0, "mode": "scaled", "steps": 1},
                 "flow_matching": {"guidance": 4.5, "mode": "standard", "steps": 25}}


class BundleError(UserError):
    """A bundle that cannot be used; the message names the file (and key) at fault."""


@dataclass
class Bundle:
    path: Path
    manifest: dict
    network: MFMJT
    extra: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        """'meanflow' (one-step capable) or 'flow_matching' (Δ = 0, multi-step Euler)."""
        return self.manifest["network"]["mode"]

    @property
    def defaults(self) -> dict:
        """Generation settings recorded for this model, e.g. {"guidance": 2.5, "mode": "scaled",
        "steps": 1}; empty when the bundle records none."""
        return dict(self.manifest.get("defaults") or {})

    @property
    def network_sha256(self) -> str:
        return self.manifest["files"][NETWORK_FILE]["sha256"]


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (weights files are large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def _state_for_saving(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_bundle(path: Path | str, network: MFMJT, *, preset: str, mode: str = "meanflow",
                codec: dict | None = None, encoders: dict | None = None,
                provenance: dict | None = None, licence: str = "proprietary",
                extra: dict[str, dict[str, torch.Tensor]] | None = None,
                defaults: dict | None = None) -> Path:
    """Write a new bundle folder atomically; an existing path is never replaced.
    `extra` maps further safetensors file names to state dicts (codec, encoders); `defaults`
    holds generation settings chosen for this model (guidance strength and mode, steps)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    config_json = json.dumps(network.config.to_dict(), sort_keys=True)
    files = {NETWORK_FILE: _state_for_saving(network)}
    for name, state in (extra or {}).items():
        if not name.endswith(".safetensors") or "/" in name or name in files:
            raise ValueError(f"extra bundle file names must be plain *.safetensors, got {name!r}")
        files[name] = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "network": {"preset": preset, "mode": mode, "config": network.config.to_dict()},
        "latent_stats": {"mean": network.latent_mean.flatten().tolist(),
                         "std": network.latent_std.flatten().tolist()},
        "codec": codec or {},
        "encoders": encoders or {},
        "provenance": provenance or {},
        "licence": licence,
        "defaults": defaults or {},
        "files": {},
    }
    metadata = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "preset": preset,
                "mode": mode, "network_config": config_json}
    final = Path(path)
    with atomic_directory(final) as tmp:
        for name, state in files.items():
            save_file(state, str(tmp / name), metadata=metadata)
            manifest["files"][name] = {"sha256": sha256_file(tmp / name),
                                       "tensors": len(state)}
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return final


def read_manifest(path: Path | str) -> dict:
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: not found; is {path} a bundle folder?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{manifest_path}: not valid JSON ({err})") from None
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{manifest_path}: key 'format' is {manifest.get('format')!r}, "
                          f"expected {FORMAT_NAME!r}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{manifest_path}: key 'format_version' is {version!r}; this engine "
                          f"reads version {FORMAT_VERSION}: update MF-MJT Foley or re-export")
    for key in ("network", "files"):
        if key not in manifest:
            raise BundleError(f"{manifest_path}: key {key!r} is missing")
    return manifest


def _read_checked(path: Path, name: str, manifest: dict) -> dict[str, torch.Tensor]:
    entry = manifest["files"].get(name)
    file_path = path / name
    if entry is None:
        raise BundleError(f"{path / MANIFEST_NAME}: key 'files.{name}' is missing")
    if not file_path.is_file():
        raise BundleError(f"{file_path}: listed in the manifest but missing")
    actual = sha256_file(file_path)
    if actual != entry.get("sha256"):
        raise BundleError(f"{file_path}: sha256 {actual[:12]}... does not match the manifest "
                          f"({str(entry.get('sha256'))[:12]}...); the file is corrupt or was "
                          f"changed: restore or re-export the bundle")
    try:
        with safe_open(str(file_path), framework="pt") as fh:
            return {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise BundleError(f"{file_path}: not a readable safetensors file ({err})") from None


def _check_state(file_path: Path, network: MFMJT, state: dict[str, torch.Tensor]) -> None:
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise BundleError(f"{file_path}: key {missing[0]!r} is missing ({len(missing)} missing)")
    if unexpected:
        raise BundleError(f"{file_path}: unexpected key {unexpected[0]!r} "
                          f"({len(unexpected)} unexpected)")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise BundleError(f"{file_path}: key {key!r} has shape {tuple(tensor.shape)}, "
                              f"expected {tuple(expected[key].shape)}")


def load_bundle(path: Path | str, *, device: torch.device | str = "cpu") -> Bundle:
    """Load and verify a bundle (checksums, keys, shapes); stored dtypes are preserved."""
    path = Path(path)
    manifest = read_manifest(path)
    try:
        config = NetworkConfig.from_dict(manifest["network"]["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{path / MANIFEST_NAME}: key 'network.config' is invalid ({err})") from None
    if manifest["network"].get("mode") not in MODES:
        raise BundleError(f"{path / MANIFEST_NAME}: key 'network.mode' must be one of {MODES}")
    state = _read_checked(path, NETWORK_FILE, manifest)
    with torch.device("meta"):
        network = MFMJT(config)
    _check_state(path / NETWORK_FILE, network, state)
    network.load_state_dict(state, strict=True, assign=True)
    network = network.to(device).eval()
    extra = {name: _read_checked(path, name, manifest)
             for name in manifest["files"] if name != NETWORK_FILE}
    return Bundle(path=path, manifest=manifest, network=network, extra=extra)
