"""Conditioning computed once per request and reused at every step (MMAudio's preprocess)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass
class Conditions:
    """Projected conditions of a batch. sync_f is kept at the sync rate; the network upsamples it
    to the latent length per call, so one set of conditions is independent of the latent length."""

    clip_f: torch.Tensor  # (B, N_clip, D)
    sync_f: torch.Tensor  # (B, N_sync, D)
    text_f: torch.Tensor  # (B, N_text, D)
    clip_f_c: torch.Tensor  # (B, D)
    text_f_c: torch.Tensor  # (B, D)
    sync_len: int  # raw sync tokens before projection (a multiple of 8)

    @property
    def batch_size(self) -> int:
        return self.clip_f.shape[0]

    @property
    def clip_len(self) -> int:
        return self.clip_f.shape[1]

    def _map(self, fn) -> "Conditions":
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Conditions(**{k: fn(v) if isinstance(v, torch.Tensor) else v
                             for k, v in values.items()})

    def index(self, idx: torch.Tensor | slice) -> "Conditions":
        """The conditions of a subset of the batch."""
        return self._map(lambda v: v[idx])

    def expand(self, batch: int) -> "Conditions":
        """Broadcast a batch of one to `batch` (a view; no copy)."""
        if self.batch_size != 1:
            raise ValueError(f"only a batch of one can be expanded, got {self.batch_size}")
        return self._map(lambda v: v.expand(batch, *v.shape[1:]))

    def cat(self, other: "Conditions") -> "Conditions":
        """Concatenate two batches (conditional + unconditional passes in one forward)."""
        if (self.clip_len, self.sync_len, self.text_f.shape[1]) != \
                (other.clip_len, other.sync_len, other.text_f.shape[1]):
            raise ValueError("conditions of different lengths cannot be batched together")
        values = {}
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            values[f.name] = torch.cat([a, b], dim=0) if isinstance(a, torch.Tensor) else a
        return Conditions(**values)
