"""Assemble a runnable bundle from imported official weights (flow-matching mode: Δ = 0, multi-step
Euler, until fine-tuned into a one-step MeanFlow model)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from engine.bundles.components import MMAUDIO_ENCODERS_VERSION, clip_entry, sync_entry
from engine.bundles.format import MODE_DEFAULTS, save_bundle
from engine.bundles.official import LICENCE_WEIGHTS, import_mmaudio
from engine.bundles.registry import WeightRegistry
from engine.errors import UserError
from engine.features.clip import OFFICIAL_MODEL
from engine.features.synchformer import layout_config
from engine.model import preset_config

CLIP_NAME = "dfn5b"  # DFN5B-CLIP-ViT-H-14-384 imported with --kind clip --name dfn5b

# per audio rate: (VAE, vocoder) as MODEL.md §5 pairs them
CODEC_FOR_RATE = {16000: ("v1-16", "bigvgan_v1_16k"), 44100: ("v1-44", "bigvgan_v2_44k")}


def assemble(registry: WeightRegistry, preset: str, out: Path | str, *,
             clip_config: Optional[dict] = None) -> Path:
    """`clip_config`: open_clip's architecture dictionary when the imported CLIP is not the
    official DFN5B ViT-H-14 (a smaller one in tests, a custom one); the manifest records it and
    the file is checked against it here. Synchformer's architecture is read from its file."""
    cfg = preset_config(preset)
    if cfg.sampling_rate not in CODEC_FOR_RATE:
        raise UserError(f"preset {preset!r} has no official codec ({cfg.sampling_rate} Hz)")
    vae_name, vocoder_name = CODEC_FOR_RATE[cfg.sampling_rate]
    required = [("network", preset), ("vae", vae_name), ("vocoder", vocoder_name)]
    missing = [f"{kind} {name}" for kind, name in required if registry.get(kind, name) is None]
    if missing:
        raise UserError(f"cannot assemble {preset}: missing {', '.join(missing)} in the weight "
                        f"registry; import them with `mfmjt weights import PATH` or download them "
                        f"with `mfmjt weights download KIND NAME`")
    network = import_mmaudio(registry.load("network", preset), preset)
    extra = {"vae.safetensors": registry.load("vae", vae_name),
             "vocoder.safetensors": registry.load("vocoder", vocoder_name)}
    encoders = {"kind": "mmaudio", "version": MMAUDIO_ENCODERS_VERSION}
    if registry.get("synchformer", "synchformer") is not None:
        state = registry.load("synchformer", "synchformer")  # checked at import
        extra["synchformer.safetensors"] = state
        encoders["sync"] = sync_entry(layout_config(state))
    if registry.get("clip", CLIP_NAME) is not None:
        state = registry.load("clip", CLIP_NAME)
        _check_layout(_clip_on_meta(clip_config), state, f"clip {CLIP_NAME}")
        extra["clip.safetensors"] = state
        encoders["clip"] = clip_entry(OFFICIAL_MODEL if clip_config is None else "custom",
                                      clip_config)
    optional = {("synchformer", "synchformer"), ("clip", CLIP_NAME)}
    sources = {e.key: {"md5": e.source_md5, "file": e.source_name, "official": e.official}
               for e in registry.entries() if (e.kind, e.name) in set(required) | optional}
    return save_bundle(out, network, preset=preset, mode="flow_matching",
                       codec={"mel": "16k" if cfg.sampling_rate == 16000 else "44k",
                              "vae": {"name": vae_name, "file": "vae.safetensors"},
                              "vocoder": {"name": vocoder_name, "file": "vocoder.safetensors"}},
                       encoders=encoders,
                       provenance={"assembled_from": sources, "training": "none (official "
                                   "MMAudio flow-matching weights; Δ embedder zero)"},
                       licence=LICENCE_WEIGHTS, extra=extra, defaults=dict(MODE_DEFAULTS["flow_matching"]))


def _clip_on_meta(config: Optional[dict]) -> torch.nn.Module:
    import open_clip
    from open_clip.model import CLIP
    with torch.device("meta"):
        return CLIP(**config) if config is not None \
            else open_clip.create_model(OFFICIAL_MODEL, pretrained=None, device="meta")


def _check_layout(module: torch.nn.Module, state: dict, label: str) -> None:
    """The imported file's keys and shapes against the architecture the manifest will name."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        first = (f"key {missing[0]!r} is missing" if missing else
                 f"unexpected key {unexpected[0]!r}" if unexpected else
                 f"key {wrong[0]!r} has shape {found[wrong[0]]}, expected {expected[wrong[0]]}")
        raise UserError(f"{label} in the weight registry does not fit the encoder architecture "
                        f"({first}); import the official file again")
