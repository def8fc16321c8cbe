"""MMAudio's conditioning: CLIP (8 fps, text tokens) + Synchformer (25 fps), one FeatureEncoder."""
from __future__ import annotations

import numpy as np
import torch

from engine.features.base import FeatureEncoder, VideoFeatures
from engine.features.clip import ClipFeatures
from engine.features.synchformer import SynchformerFeatures
from engine.media.decode import CLIP_FRAMES, SYNC_FRAMES


class MMAudioEncoder(FeatureEncoder):
    name = "mmaudio"
    clip_spec = CLIP_FRAMES
    sync_spec = SYNC_FRAMES

    def __init__(self, clip: ClipFeatures, synchformer: SynchformerFeatures,
                 synchformer_version: str = "random"):
        self.clip = clip
        self.synchformer = synchformer.eval()
        self.synchformer_version = synchformer_version
        self.clip_dim = clip.embed_dim
        self.sync_dim = synchformer.vfeat_extractor.cfg.embed_dim
        self.text_dim = clip.dim
        self.text_len = clip.context_length

    def describe(self) -> dict:
        return {"name": self.name, "clip": self.clip.version,
                "synchformer": self.synchformer_version,
                "clip_frames": [str(self.clip_spec.fps), self.clip_spec.size, self.clip_spec.mode],
                "sync_frames": [str(self.sync_spec.fps), self.sync_spec.size, self.sync_spec.mode]}

    def encode_video(self, clip_frames: np.ndarray, sync_frames: np.ndarray) -> VideoFeatures:
        return VideoFeatures(clip=self.clip.encode_images(clip_frames),
                             sync=self.synchformer.encode_frames(sync_frames))

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        return self.clip.encode_text(prompts)
