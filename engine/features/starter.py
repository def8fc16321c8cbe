"""Starter encoders: no weights, deterministic, fast on a CPU (for the embedded starter model).

- appearance (8 fps): mean colour on a 4 x 4 grid (48) + a 16-bin hue histogram = 64 dims;
- motion / onsets (25 fps): per frame, absolute frame difference and Farneback optical-flow
  energy on a 4 x 4 grid, mean flow, global difference and its positive change (onsets) = 36
  dims, log-compressed to about [-1, 1]; as many sync tokens as Synchformer gives (8 per
  16-frame segment, stride 8), each joining the two frames at its own evenly spread time, 72 dims;
- text: the CLIP BPE tokenizer (bundled with open_clip, offline) through a fixed seeded embedding
  table plus sinusoidal positions, each token L2-normalised (like CLIP's token features).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from engine.features.base import (SYNC_TOKENS_PER_SEGMENT, FeatureEncoder,
                                  VideoFeatures, sync_segment_starts)
from engine.media.decode import CLIP_FRAMES, SYNC_FRAMES

# 4: features unchanged from 3; cache entries now carry the picture's motion envelope (sync
# score) and serve the codec-v2 starter, so entries of earlier versions are never reused
ALGORITHM_VERSION = 4
GRID = 4
FLOW_SIZE = 64  # optical flow on a 64 x 64 grey image: coarse and fast
HUE_BINS = 16
MOTION_GAIN = 200.0  # raw motion values are ~0.003-0.05; see compress_motion
VOCAB_SIZE = 49408  # CLIP BPE vocabulary


def _grid_means(values: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (GRID * GRID [* C]) cell means."""
    h, w = values.shape[:2]
    cells = values[: h - h % GRID, : w - w % GRID]
    cells = cells.reshape(GRID, (h - h % GRID) // GRID, GRID, (w - w % GRID) // GRID, -1)
    return cells.mean(axis=(1, 3)).reshape(-1)


def appearance_features(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 64) float32."""
    out = np.empty((len(frames), GRID * GRID * 3 + HUE_BINS), np.float32)
    for i, frame in enumerate(frames):
        small = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        weights = hsv[..., 1].astype(np.float32) / 255  # grey pixels carry no hue
        hist, _ = np.histogram(hsv[..., 0], bins=HUE_BINS, range=(0, 180), weights=weights)
        hist = hist / max(weights.sum(), 1e-6)
        out[i] = np.concatenate([_grid_means(small), hist]).astype(np.float32)
    return out


def motion_features(frames: np.ndarray) -> np.ndarray:
    """(M, H, W, 3) uint8 at 25 fps -> (M, 36) float32; frame 0 has zero motion."""
    grey = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (FLOW_SIZE, FLOW_SIZE),
                       interpolation=cv2.INTER_AREA) for f in frames]
    per_frame = np.zeros((len(frames), 2 * GRID * GRID + 4), np.float32)
    previous_global = 0.0
    for i in range(1, len(frames)):
        diff = np.abs(grey[i].astype(np.float32) - grey[i - 1].astype(np.float32)) / 255
        flow = cv2.calcOpticalFlowFarneback(grey[i - 1], grey[i], None, pyr_scale=0.5, levels=2,
                                            winsize=9, iterations=2, poly_n=5, poly_sigma=1.1,
                                            flags=0)
        energy = np.sqrt((flow ** 2).sum(axis=-1)) / FLOW_SIZE
        global_diff = float(diff.mean())
        per_frame[i] = np.concatenate([
            _grid_means(diff), _grid_means(energy),
            flow.reshape(-1, 2).mean(axis=0) / FLOW_SIZE,
            [global_diff, max(0.0, global_diff - previous_global)]])
        previous_global = global_diff
    return per_frame


def compress_motion(values: np.ndarray) -> np.ndarray:
    """Signed log compression to about [-1, 1]: raw differences and flows are tiny (std ~0.02),
    which a freshly initialised input projection would pass on as a near-zero condition; this
    keeps zero at zero and the order of values, and spreads small motions (0.003 -> 0.09,
    0.03 -> 0.37, 0.5 -> 0.87)."""
    return (np.sign(values) * np.log1p(MOTION_GAIN * np.abs(values))
            / np.log1p(MOTION_GAIN)).astype(np.float32)


def token_frames(motion: np.ndarray, tokens: int) -> np.ndarray:
    """(frames, 36) -> (tokens, 72): token m joins the two frames around the time m stands for
    when the tokens are spread evenly over the range, (m + 0.5) / tokens of it. The network
    stretches sync tokens evenly onto the audio latents (nearest-exact interpolation), so this
    puts each latent beside the motion at its own time; Synchformer's overlapping segment layout
    would put it up to a quarter of a second away."""
    frames = len(motion)
    centre = (np.arange(tokens) + 0.5) * frames / tokens - 0.5
    first = np.clip(np.floor(centre).astype(int), 0, frames - 1)
    second = np.clip(first + 1, 0, frames - 1)
    return np.concatenate([motion[first], motion[second]], axis=1).astype(np.float32)


def _sinusoid_positions(length: int, dim: int) -> np.ndarray:
    pos = np.arange(length)[:, None]
    freqs = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)[None]
    table = np.zeros((length, dim), np.float32)
    table[:, 0::2] = np.sin(pos * freqs)
    table[:, 1::2] = np.cos(pos * freqs)
    return table


class StarterEncoder(FeatureEncoder):
    name = "starter"
    clip_spec = CLIP_FRAMES
    sync_spec = SYNC_FRAMES
    clip_dim = GRID * GRID * 3 + HUE_BINS  # 64
    sync_dim = 2 * (2 * GRID * GRID + 4)  # 72
    text_dim = 64
    text_len = 16

    def __init__(self, seed: int = 20251123):
        import open_clip  # the tokenizer and its BPE vocabulary ship with the package

        self.seed = seed
        self._tokenizer = open_clip.get_tokenizer("ViT-H-14-378-quickgelu")
        gen = torch.Generator().manual_seed(seed)
        self._table = torch.randn(VOCAB_SIZE, self.text_dim, generator=gen)
        self._positions = torch.from_numpy(_sinusoid_positions(self.text_len, self.text_dim))

    def describe(self) -> dict:
        return {"name": self.name, "algorithm": ALGORITHM_VERSION, "seed": self.seed,
                "clip": [str(self.clip_spec.fps), self.clip_spec.size, self.clip_spec.mode],
                "sync": [str(self.sync_spec.fps), self.sync_spec.size, self.sync_spec.mode],
                "dims": [self.clip_dim, self.sync_dim, self.text_dim, self.text_len]}

    def encode_video(self, clip_frames: np.ndarray, sync_frames: np.ndarray) -> VideoFeatures:
        clip = torch.from_numpy(appearance_features(clip_frames))
        motion = compress_motion(motion_features(sync_frames))
        tokens = len(sync_segment_starts(len(sync_frames))) * SYNC_TOKENS_PER_SEGMENT
        sync = torch.from_numpy(token_frames(motion, tokens))
        return VideoFeatures(clip=clip, sync=sync)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self._tokenizer(list(prompts))[:, : self.text_len]  # (B, 77) -> (B, L)
        feats = self._table[tokens] + self._positions
        feats = torch.where((tokens == 0)[..., None], torch.zeros_like(feats), feats)  # padding
        norm = feats.norm(dim=-1, keepdim=True)
        return torch.where(norm > 0, feats / norm.clamp_min(1e-12), feats)
