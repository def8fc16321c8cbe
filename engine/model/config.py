"""Network configurations and the named presets (MODEL.md §1), and sequence lengths per duration.

Every sequence length is derived from a duration and the frame rates, per request: nothing about
duration is stored in the network (MMAudio's sequence_config, without its mutable global).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from engine.errors import UserError


@dataclass(frozen=True)
class SequenceLengths:
    latent: int
    clip: int
    sync: int


@dataclass(frozen=True)
class NetworkConfig:
    latent_dim: int
    hidden_dim: int
    num_heads: int
    depth: int
    fused_depth: int
    clip_dim: int = 1024
    sync_dim: int = 768
    text_dim: int = 1024
    text_seq_len: int = 77
    mlp_ratio: float = 4.0
    v2: bool = False
    # audio timing: one latent token covers `latent_hop` samples (mel hop x 2, MODEL.md §5)
    sampling_rate: int = 16000
    latent_hop: int = 512
    # visual timing (MODEL.md §4)
    clip_fps: float = 8.0
    sync_fps: float = 25.0
    sync_segment_frames: int = 16
    sync_segment_stride: int = 8
    sync_tokens_per_segment: int = 8
    training_duration: float = 8.0

    def __post_init__(self) -> None:
        if self.hidden_dim % self.num_heads or (self.hidden_dim // self.num_heads) % 2:
            raise ValueError(f"hidden_dim {self.hidden_dim} must split into {self.num_heads} heads "
                             f"of even size")
        if not 0 < self.fused_depth < self.depth:
            raise ValueError(f"fused_depth must be in 1..depth-1 (depth {self.depth}), "
                             f"got {self.fused_depth}")

    @property
    def joint_depth(self) -> int:
        return self.depth - self.fused_depth

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @property
    def latent_rate(self) -> float:
        """Latent tokens per second (31.25 at 16 kHz, 43.07 at 44.1 kHz)."""
        return self.sampling_rate / self.latent_hop

    @property
    def min_duration(self) -> float:
        """Shortest duration with one whole Synchformer segment."""
        return self.sync_segment_frames / self.sync_fps

    def lengths(self, duration: float) -> SequenceLengths:
        """Token counts of each stream for `duration` seconds (MMAudio's formulas)."""
        if not math.isfinite(duration) or duration < self.min_duration:
            raise ValueError(f"duration must be at least {self.min_duration:.2f} s "
                             f"(one sync segment), got {duration}")
        latent = int(math.ceil(duration * self.sampling_rate / self.latent_hop))
        clip = int(duration * self.clip_fps)
        frames = duration * self.sync_fps
        segments = (frames - self.sync_segment_frames) // self.sync_segment_stride + 1
        sync = int(segments * self.sync_tokens_per_segment)
        return SequenceLengths(latent=latent, clip=clip, sync=sync)

    def expected_lengths(self, latent_len: int) -> tuple[range, range, float]:
        """Clip and sync lengths compatible with `latent_len` tokens, and its nominal duration.

        latent_len = ceil(d * rate) holds for d in ((N - 1) / rate, N / rate]; the other streams'
        lengths are monotone in d, so the compatible lengths form ranges.
        """
        hi = latent_len / self.latent_rate
        lo = max((latent_len - 1) / self.latent_rate + 1e-9, self.min_duration)
        if lo > hi:
            raise ValueError(f"latent of {latent_len} tokens is shorter than the minimum duration "
                             f"{self.min_duration:.2f} s")
        short, long = self.lengths(lo), self.lengths(hi)
        return range(short.clip, long.clip + 1), range(short.sync, long.sync + 1), hi

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown network config keys {unknown}; expected a subset of "
                             f"{sorted(known)}")
        return cls(**data)


_AUDIO_16K = dict(sampling_rate=16000, latent_hop=512)
_AUDIO_44K = dict(sampling_rate=44100, latent_hop=1024)

PRESETS: dict[str, NetworkConfig] = {
    # a few thousand parameters per block: for tests and toy runs only
    "tiny": NetworkConfig(latent_dim=20, hidden_dim=64, num_heads=2, depth=3, fused_depth=1,
                          clip_dim=32, sync_dim=16, text_dim=32, text_seq_len=8, **_AUDIO_16K),
    "small_16k": NetworkConfig(latent_dim=20, hidden_dim=448, num_heads=7, depth=12,
                               fused_depth=8, **_AUDIO_16K),
    "small_44k": NetworkConfig(latent_dim=40, hidden_dim=448, num_heads=7, depth=12,
                               fused_depth=8, **_AUDIO_44K),
    "medium_44k": NetworkConfig(latent_dim=40, hidden_dim=896, num_heads=14, depth=12,
                                fused_depth=8, **_AUDIO_44K),
    "large_44k": NetworkConfig(latent_dim=40, hidden_dim=896, num_heads=14, depth=21,
                               fused_depth=14, **_AUDIO_44K),
    "large_44k_v2": NetworkConfig(latent_dim=40, hidden_dim=896, num_heads=14, depth=21,
                                  fused_depth=14, v2=True, **_AUDIO_44K),
    # the embedded starter model: starter encoders (engine/features/starter.py), the starter codec
    # (version 2: 20 latent channels at 31.25 tokens/s), trained on 4 s synth scenes
    # (trainer/synth); bundles of the 8-channel version 1 keep their config in their manifest
    "starter": NetworkConfig(latent_dim=20, hidden_dim=96, num_heads=3, depth=4, fused_depth=2,
                             clip_dim=64, sync_dim=72, text_dim=64, text_seq_len=16,
                             training_duration=4.0, **_AUDIO_16K),
}


def preset_config(preset: str, **overrides) -> NetworkConfig:
    if preset not in PRESETS:
        raise UserError(f"unknown network preset {preset!r}; choose one of {sorted(PRESETS)}",
                        field="preset")
    try:
        return dataclasses.replace(PRESETS[preset], **overrides)
    except TypeError as err:
        raise ValueError(f"bad override for preset {preset!r}: {err}") from None
