"""One interface for every conditioning encoder (MODEL.md §4).

An encoder turns sampled frames into per-frame CLIP-like features (8 fps) and per-token sync
features (Synchformer layout: segments of 16 frames at 25 fps with stride 8, 8 tokens each), and
prompts into a token sequence of text features.
"""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from engine.analysis.sync import motion_envelope
from engine.errors import UserError
from engine.media.decode import FrameSpec

SYNC_SEGMENT_FRAMES = 16
SYNC_SEGMENT_STRIDE = 8
SYNC_TOKENS_PER_SEGMENT = 8


def sync_segment_starts(n_frames: int) -> list[int]:
    """First frame of each 16-frame segment with stride 8 (MMAudio's layout)."""
    if n_frames < SYNC_SEGMENT_FRAMES:
        raise UserError(f"need at least {SYNC_SEGMENT_FRAMES} sync frames (0.64 s at 25 fps), "
                        f"got {n_frames}; use a window or range of 0.64 s or longer")
    count = (n_frames - SYNC_SEGMENT_FRAMES) // SYNC_SEGMENT_STRIDE + 1
    return [i * SYNC_SEGMENT_STRIDE for i in range(count)]


@dataclass
class VideoFeatures:
    clip: torch.Tensor  # (N_clip, clip_dim) float32
    sync: torch.Tensor  # (N_sync, sync_dim) float32, N_sync = segments * 8
    # (N_sync_frames,) the picture's motion envelope at the sync rate (engine/analysis/sync.py),
    # for the per-take sync score; None where frames were never seen (training caches)
    motion: Optional[torch.Tensor] = None


class FeatureEncoder(ABC):
    """name, version (a hash of everything that changes the output), rates, dims, encoders."""

    name: str
    clip_spec: FrameSpec
    sync_spec: FrameSpec
    clip_dim: int
    sync_dim: int
    text_dim: int
    text_len: int

    @abstractmethod
    def describe(self) -> dict:
        """JSON-serialisable description: everything that decides the features."""

    @property
    def version(self) -> str:
        blob = json.dumps(self.describe(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @abstractmethod
    def encode_video(self, clip_frames: np.ndarray, sync_frames: np.ndarray) -> VideoFeatures:
        """clip_frames (N, H, W, 3) uint8 at clip fps; sync_frames (M, 224, 224, 3) at 25 fps."""

    @abstractmethod
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, text_len, text_dim) float32; '' gives the empty-string features."""


def encode_range(encoder: FeatureEncoder, clip_frames: np.ndarray,
                 sync_frames: np.ndarray) -> VideoFeatures:
    """The encoder's features of a range plus its motion envelope (for the sync score)."""
    feats = encoder.encode_video(clip_frames, sync_frames)
    feats.motion = torch.from_numpy(motion_envelope(sync_frames))
    return feats
