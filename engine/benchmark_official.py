"""The official stack end to end, ready for the first GPU (issue 16): a bundle of random weights
in MMAudio's layouts (network preset, VAE + BigVGAN of its rate, CLIP DFN5B ViT-H-14 through
open_clip, Synchformer), built in memory, generating for a real 1080p clip: picture features
(decode + CLIP + Synchformer), then one MeanFlow step (CFG-scaled) against MMAudio's 25 Euler
steps (standard CFG 4.5), codec included; the network under the device's autocast (bf16 on CUDA)
with its relative error against fp32, and the peak memory. Timing does not depend on the weights'
values. `make bench` runs it for small_16k and large_44k_v2 when torch sees a CUDA GPU; on a CPU
the ViT-H alone takes minutes per clip, so it is skipped there (tests run it with tiny shapes).
"""
from __future__ import annotations

import statistics
import time
from fractions import Fraction
from pathlib import Path
from typing import Optional

import torch

OFFICIAL_PRESETS = ("small_16k", "large_44k_v2")


def random_official_bundle(preset: str, *, clip_config: Optional[dict] = None,
                           sync_config=None, seed: int = 0):
    """A `Bundle` of random N(0, 0.02) weights in the official layouts (nothing written)."""
    from open_clip.model import CLIP

    from engine.bundles.components import clip_entry, sync_entry
    from engine.bundles.format import Bundle
    from engine.codec import BIGVGAN_V1_16K, BIGVGAN_V2_44K, VAE_16K, VAE_44K, BigVGANGenerator, MelVAE
    from engine.features.clip import OFFICIAL_MODEL
    from engine.features.synchformer import SynchformerConfig, SynchformerFeatures
    from engine.model import build_network
    torch.manual_seed(seed)
    network = build_network(preset).eval()
    with torch.no_grad():
        for param in network.parameters():
            param.normal_(0.0, 0.02)
    sixteen = network.config.sampling_rate == 16000
    if clip_config is None:
        import open_clip
        clip = open_clip.create_model(OFFICIAL_MODEL, pretrained=None)
    else:
        clip = CLIP(**clip_config)
    sync_config = sync_config or SynchformerConfig()
    extra = {"vae.safetensors": MelVAE(VAE_16K if sixteen else VAE_44K).state_dict(),
             "vocoder.safetensors": BigVGANGenerator(BIGVGAN_V1_16K if sixteen
                                                     else BIGVGAN_V2_44K).state_dict(),
             "clip.safetensors": clip.state_dict(),
             "synchformer.safetensors": SynchformerFeatures(sync_config).state_dict()}
    manifest = {
        "network": {"preset": preset, "mode": "meanflow", "config": network.config.to_dict()},
        "codec": {"mel": "16k" if sixteen else "44k",
                  "vae": {"name": "random", "file": "vae.safetensors"},
                  "vocoder": {"name": "random", "file": "vocoder.safetensors"}},
        "encoders": {"kind": "mmaudio", "version": 1,
                     "clip": clip_entry(OFFICIAL_MODEL if clip_config is None else "custom",
                                        clip_config),
                     "sync": sync_entry(sync_config)},
        "files": {name: {"sha256": f"random-{seed}-{name}"} for name in extra},
        "defaults": {}, "licence": "random weights (benchmark)", "provenance": {}}
    return Bundle(path=Path(f"random-{preset}"), manifest=manifest, network=network, extra=extra)


def _timed(device: torch.device, fn, repeats: int) -> tuple[list[float], object]:
    result, times = None, []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, result


def run_official_case(preset: str, clip: Path, *, seconds: float = 8.0, repeats: int = 3,
                      device: str = "auto", clip_config: Optional[dict] = None,
                      sync_config=None) -> dict:
    """Medians of: picture features, a one-step request and a 25-step request (features,
    sampling and codec each time), the bf16-vs-fp32 error of the one-step latents, peak memory."""
    from engine.devices import resolve_device
    from engine.pipeline import FoleyPipeline, GenerateRequest
    device = resolve_device(device)
    pipeline = FoleyPipeline(random_official_bundle(preset, clip_config=clip_config,
                                                    sync_config=sync_config), device=device)
    end = Fraction(seconds).limit_denominator(1000)
    one = GenerateRequest(media=clip, end=end, steps=1, mode="scaled", guidance=1.5)
    many = GenerateRequest(media=clip, end=end, steps=25, mode="standard", guidance=4.5)
    pipeline.generate(one)  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    features_s, features = _timed(device, lambda: pipeline.video_features(clip, Fraction(0), end),
                                  repeats)
    one_s, _ = _timed(device, lambda: pipeline.generate(one), repeats)
    many_s, _ = _timed(device, lambda: pipeline.generate(many), max(1, repeats // 2))
    text = pipeline.encoder.encode_text([""])
    noise = pipeline.noise(0, 0, pipeline.network.config.lengths(seconds).latent)
    settings = {"guidance": 1.5, "mode": "scaled", "steps": 1}
    low = pipeline.sample_latents([features], text, None, noise, settings)
    kept, pipeline.autocast = pipeline.autocast, None
    full = pipeline.sample_latents([features], text, None, noise, settings)
    pipeline.autocast = kept
    error = ((low - full).pow(2).mean() / full.pow(2).mean()).sqrt().item()
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else None
    return {"case": f"official_end_to_end_{preset}", "preset": preset, "device": str(device),
            "seconds": seconds, "repeats": repeats,
            "network_precision": str(kept).replace("torch.", "") if kept else "float32",
            "features_median_s": statistics.median(features_s),
            "one_step_median_s": statistics.median(one_s),
            "twentyfive_step_median_s": statistics.median(many_s),
            "speedup": statistics.median(many_s) / statistics.median(one_s),
            "relative_rms_error_vs_fp32": error, "peak_memory_mb": peak}


def render_official_rows(rows: list[dict]) -> list[str]:
    lines = ["## The official stack end to end (random weights, a real 1080p clip)", "",
             "| preset | device | network | features s | 1 step s | 25 steps s | 25 / 1 | "
             "rel. error vs fp32 | peak MB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['preset']} | {r['device']} | not measured: {r['failed']} |"
                         + " |" * 6)
            continue
        peak = f"{r['peak_memory_mb']:.0f}" if r["peak_memory_mb"] is not None else "-"
        lines.append(f"| {r['preset']} ({r['seconds']:g} s) | {r['device']} | "
                     f"{r['network_precision']} | {r['features_median_s']:.3f} | "
                     f"{r['one_step_median_s']:.3f} | {r['twentyfive_step_median_s']:.3f} | "
                     f"{r['speedup']:.1f}x | {r['relative_rms_error_vs_fp32']:.1e} | {peak} |")
    return lines + [""]


__all__ = ["OFFICIAL_PRESETS", "random_official_bundle", "render_official_rows",
           "run_official_case"]
