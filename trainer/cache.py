"""Training cache: VAE latents (posterior mean and std) and conditioning features, computed once.

Shards of a few library files each, as safetensors, written atomically; a rerun reuses every shard
whose metadata matches (so a killed run resumes where it stopped). Per-channel latent statistics
for new models are written at the end. Audio-only files get `has_video = 0` and zero video
features; the trainer substitutes the network's empty features for them (paper §3.1).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.atomic import atomic_target
from engine.cancel import Cancelled
from engine.errors import UserError
from engine.features.base import (SYNC_TOKENS_PER_SEGMENT, FeatureEncoder, VideoFeatures,
                                  sync_segment_starts)
from engine.media.decode import decode_frames, probe
from trainer.data.scan import LibraryItem, ScanReport
from trainer.diskspace import is_out_of_space
from trainer.data.windows import iter_windows

CACHE_VERSION = 1
STATS_FILE = "latent_stats.safetensors"


class CacheError(UserError):
    """A cache that cannot be used; the message names the shard and what to do."""


@dataclass
class CacheSummary:
    shards: int
    windows: int
    computed: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)


def _item_identity(item: LibraryItem) -> dict:
    stat = item.path.stat()
    return {"path": str(item.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "caption": item.caption.text, "start": item.caption.start, "end": item.caption.end}


def _fingerprint(module: torch.nn.Module) -> str:
    """Identity of the codec weights: a changed codec invalidates every shard."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _shard_key(items: list[LibraryItem], config: dict) -> str:
    blob = json.dumps({"items": [_item_identity(i) for i in items], "config": config},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _shard_is_valid(path: Path, key: str) -> bool:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("key") == key
    except Exception:  # missing or damaged: recompute
        return False


def _window_frames(item: LibraryItem, start: float, window_seconds: float, encoder):
    """Frames of a window; a video shorter than the window (its audio is padded with silence)
    holds its last frame to the window's end, so both streams keep the window's length."""
    available = min(window_seconds, float(probe(item.path).duration) - start)  # picture's end
    specs = (encoder.clip_spec, encoder.sync_spec)
    if available >= window_seconds - 1e-6:
        return decode_frames(item.path, start, window_seconds, specs)
    frames = decode_frames(item.path, start, available, specs)
    padded = []
    for spec, got in zip(specs, frames):
        want = int(window_seconds * float(spec.fps))
        if len(got) < want:
            got = np.concatenate([got, np.repeat(got[-1:], want - len(got), axis=0)])
        padded.append(got)
    return tuple(padded)


def _encode_shard(items: list[LibraryItem], *, codec, encoder: FeatureEncoder,
                  window_seconds: float, sample_rate: int) -> Optional[dict[str, torch.Tensor]]:
    rows: dict[str, list] = {k: [] for k in ("latent_mean", "latent_std", "clip", "sync",
                                             "has_video")}
    captions, sources = [], []
    for item in items:
        for window in iter_windows(item, window_seconds=window_seconds, sample_rate=sample_rate):
            posterior = _posterior(codec, window.audio)
            rows["latent_mean"].append(posterior.mean[0])
            rows["latent_std"].append(posterior.std[0])
            if item.kind == "video":
                clip_frames, sync_frames = _window_frames(item, window.start, window_seconds,
                                                          encoder)
                feats = encoder.encode_video(clip_frames, sync_frames)
                rows["has_video"].append(torch.tensor(1, dtype=torch.uint8))
            else:
                n_clip = int(window_seconds * encoder.clip_spec.fps)
                n_sync = len(sync_segment_starts(int(window_seconds * encoder.sync_spec.fps))) \
                    * SYNC_TOKENS_PER_SEGMENT
                feats = VideoFeatures(clip=torch.zeros(n_clip, encoder.clip_dim),
                                      sync=torch.zeros(n_sync, encoder.sync_dim))
                rows["has_video"].append(torch.tensor(0, dtype=torch.uint8))
            rows["clip"].append(feats.clip)
            rows["sync"].append(feats.sync)
            captions.append(item.caption.text)
            sources.append(f"{item.path.name}@{window.start:g}")
    if not captions:
        return None
    tensors = {k: torch.stack(v).contiguous() for k, v in rows.items()}
    tensors["text"] = encoder.encode_text(captions).contiguous()
    return {"tensors": tensors, "captions": captions, "sources": sources}


@torch.no_grad()
def _posterior(codec, audio: np.ndarray):
    """The codec's posterior of one window, computed on the codec's device, kept on the CPU."""
    posterior = codec.encode(torch.from_numpy(audio)[None].to(codec.device))
    return type(posterior)(mean=posterior.mean.cpu(), logvar=posterior.logvar.cpu())


def build_cache(report: ScanReport, out_dir: Path | str, *, codec, encoder: FeatureEncoder,
                sample_rate: int, files_per_shard: int = 4,
                progress: Optional[Callable[[int, int], None]] = None,
                cancel: Optional[Callable[[], bool]] = None) -> CacheSummary:
    """Encode every window of the library into shards under `out_dir` (never inside the library)."""
    out_dir = Path(out_dir)
    if report.root in out_dir.resolve().parents or out_dir.resolve() == report.root:
        raise CacheError(f"{out_dir}: the cache must not live inside the library {report.root}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".shard-*.partial"):  # a killed run's half-written shard
        stale.unlink(missing_ok=True)
    config, groups = _layout(report, codec, encoder, sample_rate, files_per_shard)
    summary = CacheSummary(shards=len(groups), windows=0)
    for index, items in enumerate(groups):
        if cancel is not None and cancel():
            raise Cancelled(f"caching cancelled before shard {index}")
        path = out_dir / f"shard-{index:05d}.safetensors"
        key = _shard_key(items, config)
        if _shard_is_valid(path, key):
            summary.reused.append(index)
        else:
            shard = _encode_shard(items, codec=codec, encoder=encoder,
                                  window_seconds=report.window_seconds, sample_rate=sample_rate)
            if shard is not None:
                try:
                    with atomic_target(path, overwrite=True) as tmp:
                        save_file(shard["tensors"], str(tmp), metadata={
                            "key": key, "captions": json.dumps(shard["captions"]),
                            "sources": json.dumps(shard["sources"])})
                except Exception as err:  # safetensors reports I/O errors as its own type
                    if is_out_of_space(err):
                        raise CacheError(f"{out_dir}: no space left to write {path.name}; free "
                                         f"some space and run `mfmjt train cache` again (the "
                                         f"{len(summary.computed) + len(summary.reused)} finished "
                                         f"shards are kept)") from None
                    raise
            summary.computed.append(index)
        if progress is not None:
            progress(index + 1, len(groups))
    summary.windows = write_latent_stats(out_dir, load_shards(out_dir))
    return summary


def refresh_latents(report: ScanReport, out_dir: Path | str, *, codec, encoder: FeatureEncoder,
                    sample_rate: int, files_per_shard: int = 4,
                    progress: Optional[Callable[[int, int], None]] = None) -> CacheSummary:
    """After the VAE is retrained, recompute only the latents of an existing cache: the picture
    features (the slow part, minutes per hundred files) depend on the encoder alone and are kept.
    Each shard must list the same windows (`sources`) as the library gives now, or it is refused;
    refreshed shards get the key of the new codec, so `build_cache` then reuses them."""
    out_dir = Path(out_dir)
    config, groups = _layout(report, codec, encoder, sample_rate, files_per_shard)
    summary = CacheSummary(shards=len(groups), windows=0)
    for index, items in enumerate(groups):
        path = out_dir / f"shard-{index:05d}.safetensors"
        key = _shard_key(items, config)
        if not _shard_is_valid(path, key):
            windows = [w for item in items for w in iter_windows(
                item, window_seconds=report.window_seconds, sample_rate=sample_rate)]
            if not windows:  # build_cache writes no shard for a group without windows
                continue
            try:
                with safe_open(str(path), framework="pt") as fh:
                    meta = dict(fh.metadata() or {})
                    tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            except Exception:
                raise CacheError(f"{path}: missing or damaged; rebuild the cache with "
                                 f"`mfmjt train cache`") from None
            sources = [f"{w.item.path.name}@{w.start:g}" for w in windows]
            captions = [w.item.caption.text for w in windows]
            if sources != json.loads(meta.get("sources", "[]")) or \
                    captions != json.loads(meta.get("captions", "[]")):
                raise CacheError(f"{path}: its windows or captions are not the library's now; "
                                 f"rebuild the cache with `mfmjt train cache`")
            posteriors = [_posterior(codec, w.audio) for w in windows]
            tensors["latent_mean"] = torch.cat([p.mean for p in posteriors]).contiguous()
            tensors["latent_std"] = torch.cat([p.std for p in posteriors]).contiguous()
            with atomic_target(path, overwrite=True) as tmp:
                save_file(tensors, str(tmp), metadata={**meta, "key": key})
            summary.computed.append(index)
        else:
            summary.reused.append(index)
        if progress is not None:
            progress(index + 1, len(groups))
    summary.windows = write_latent_stats(out_dir, load_shards(out_dir))
    return summary


def write_latent_stats(out_dir: Path, shards: list[dict]) -> int:
    """Per-channel mean and std of the shards' latents (the network's normalisation) into
    `out_dir`; returns the number of windows."""
    means = torch.cat([s["latent_mean"] for s in shards])  # (N, C, T)
    flat = means.transpose(0, 1).reshape(means.shape[1], -1)
    save_file({"mean": flat.mean(dim=1).contiguous(), "std": flat.std(dim=1).contiguous()},
              str(Path(out_dir) / STATS_FILE))
    return means.shape[0]


def _layout(report: ScanReport, codec, encoder: FeatureEncoder, sample_rate: int,
            files_per_shard: int) -> tuple[dict, list[list[LibraryItem]]]:
    """What a shard's key covers, and the library's files grouped into shards."""
    config = {"version": CACHE_VERSION, "encoder": encoder.version, "sample_rate": sample_rate,
              "window": report.window_seconds,
              # latents depend on the encoder side only: a retrained vocoder keeps the shards
              "codec": _fingerprint(getattr(codec, "vae", codec))}
    groups = [report.items[i:i + files_per_shard]
              for i in range(0, len(report.items), files_per_shard)]
    return config, groups


def load_shards(cache_dir: Path | str) -> list[dict[str, torch.Tensor]]:
    """Every shard, validated: consistent tensors and readable metadata."""
    shards = []
    for path in sorted(Path(cache_dir).glob("shard-*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            captions = json.loads(meta["captions"])
        except Exception as err:
            raise CacheError(f"{path}: damaged cache shard ({err}); run `mfmjt train cache` again "
                             f"to rebuild it") from None
        sizes = {k: v.shape[0] for k, v in tensors.items()}
        if len(set(sizes.values())) != 1 or next(iter(sizes.values())) != len(captions):
            raise CacheError(f"{path}: inconsistent shard {sizes}, {len(captions)} captions; "
                             f"run `mfmjt train cache` again")
        tensors["captions"] = captions
        shards.append(tensors)
    return shards


__all__ = ["CacheError", "CacheSummary", "build_cache", "load_shards", "refresh_latents",
           "write_latent_stats"]
