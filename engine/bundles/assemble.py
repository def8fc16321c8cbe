"""Assemble a runnable bundle from imported official weights (flow-matching mode: Δ = 0, multi-step
Euler, until fine-tuned into a one-step MeanFlow model)."""
from __future__ import annotations

from pathlib import Path

from engine.bundles.format import save_bundle
from engine.bundles.official import LICENCE_WEIGHTS, import_mmaudio
from engine.bundles.registry import WeightRegistry
from engine.errors import UserError
from engine.features.clip import OFFICIAL_MODEL
from engine.model import preset_config

CLIP_NAME = "dfn5b"  # DFN5B-CLIP-ViT-H-14-384 imported with --kind clip --name dfn5b

# per audio rate: (VAE, vocoder) as MODEL.md §5 pairs them
CODEC_FOR_RATE = {16000: ("v1-16", "bigvgan_v1_16k"), 44100: ("v1-44", "bigvgan_v2_44k")}


def assemble(registry: WeightRegistry, preset: str, out: Path | str) -> Path:
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
    encoders = {}
    if registry.get("synchformer", "synchformer") is not None:
        extra["synchformer.safetensors"] = registry.load("synchformer", "synchformer")
        encoders["sync"] = {"kind": "synchformer", "file": "synchformer.safetensors"}
    clip = registry.get("clip", CLIP_NAME)
    if clip is not None:
        extra["clip.safetensors"] = registry.load("clip", CLIP_NAME)
        encoders["clip"] = {"kind": "open_clip", "model": OFFICIAL_MODEL, "file": "clip.safetensors"}
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
                       licence=LICENCE_WEIGHTS, extra=extra)
