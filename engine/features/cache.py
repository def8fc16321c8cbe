"""Content-addressed on-disk cache of video features (safetensors), size-capped LRU.

Key = media identity (resolved path, size, mtime, and a hash of its first and last 64 KiB), the
exact source range, and the encoder's version hash. A regenerate with another prompt, seed or
guidance hits the cache and never decodes or encodes the video again. Writes are atomic; readers
treat a missing or damaged entry as a miss, so concurrent users are safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable, Optional

from safetensors import safe_open
from safetensors.torch import save_file

from engine.atomic import atomic_target
from engine.features.base import FeatureEncoder, VideoFeatures, encode_range
from engine.media.decode import decode_frames
from engine.media.errors import MediaError
from engine.media.timing import TimeValue, as_fraction

DEFAULT_MAX_BYTES = 2 * 1024**3
EDGE_BYTES = 64 * 1024


class CacheWarning(UserWarning):
    """The cache could not be written; generation goes on without it."""


def media_identity(path: Path) -> dict:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise MediaError(path, "file not found; check the path or relink the media") from None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(EDGE_BYTES))
        if stat.st_size > EDGE_BYTES:
            fh.seek(max(EDGE_BYTES, stat.st_size - EDGE_BYTES))
            digest.update(fh.read(EDGE_BYTES))
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "edges": digest.hexdigest()}


class FeatureCache:
    def __init__(self, root: Optional[Path | str] = None, *, max_bytes: int = DEFAULT_MAX_BYTES):
        if root is None:
            from engine.paths import cache_dir
            root = cache_dir() / "features"
        self.root = Path(root)
        self.max_bytes = max_bytes

    def key(self, media: Path | str, start: TimeValue, duration: TimeValue,
            encoder: FeatureEncoder) -> str:
        record = {"media": media_identity(Path(media)), "start": str(as_fraction(start)),
                  "duration": str(as_fraction(duration)), "encoder": encoder.name,
                  "encoder_version": encoder.version}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> Optional[VideoFeatures]:
        path = self._path(key)
        try:
            with safe_open(str(path), framework="pt") as fh:
                if (fh.metadata() or {}).get("key") != key:
                    raise ValueError("key mismatch")
                if "motion" not in fh.keys():  # written before sync scores: compute again
                    raise KeyError("motion")
                feats = VideoFeatures(clip=fh.get_tensor("clip"), sync=fh.get_tensor("sync"),
                                      motion=fh.get_tensor("motion"))
            os.utime(path)  # most recently used
            return feats
        except FileNotFoundError:
            return None
        except Exception:  # damaged entry (safetensors raises its own types): drop it, recompute
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, feats: VideoFeatures) -> Path:
        path = self._path(key)
        with atomic_target(path, overwrite=True) as tmp:  # same key, same content
            tensors = {"clip": feats.clip.contiguous(), "sync": feats.sync.contiguous()}
            if feats.motion is not None:
                tensors["motion"] = feats.motion.contiguous()
            save_file(tensors, str(tmp), metadata={"key": key})
        self.evict()
        return path

    def evict(self) -> None:
        """Delete least recently used entries until the cache fits in max_bytes."""
        entries = []
        for path in self.root.glob("*/*.safetensors"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def video_features(self, media: Path | str, start: TimeValue, duration: TimeValue,
                       encoder: FeatureEncoder, *,
                       decoder: Callable = decode_frames) -> VideoFeatures:
        """Cached features of a range; decodes and encodes only on a miss."""
        key = self.key(media, start, duration, encoder)
        cached = self.get(key)
        if cached is not None:
            return cached
        clip_frames, sync_frames = decoder(media, start, duration,
                                           (encoder.clip_spec, encoder.sync_spec))
        feats = encode_range(encoder, clip_frames, sync_frames)
        try:
            self.put(key, feats)
        except OSError as err:  # a read-only or full cache folder costs speed, not the take
            warnings.warn(CacheWarning(f"feature cache {self.root} not written ({err.strerror or err}); "
                                       f"the picture will be decoded again next time"), stacklevel=2)
        return feats


__all__ = ["FeatureCache", "media_identity"]
