"""Cancellation and progress, shared by every long operation (decoding, encoding, sampling,
decoding latents, writing, training) and by every front end (issue 15).

A cancel check is any callable returning True once the work should stop; `CancelToken` is the
thread-safe one a panel button, a service endpoint or Ctrl-C sets from another thread. Work polls
it between small units (a decoded frame, a sampler step, a window) and raises `Cancelled`.
Progress is one event type, `Progress(stage, done, total)`, in the order of `STAGES`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional


class Cancelled(Exception):
    """Raised between units of work when the caller's cancel check returns True."""


class CancelToken:
    """Set from any thread (`cancel()`), polled by the work (`token()` or `token.cancelled`)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()


CancelCheck = Callable[[], bool]


def raise_if_cancelled(cancel: Optional[CancelCheck], what: str) -> None:
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled {what}")


# the stages of one generation, in order: the picture decoded and encoded (skipped when the
# feature cache has it), the network's steps, the latents decoded to sound, the takes written
STAGES = ("features", "sampling", "decoding", "writing")


@dataclass(frozen=True)
class Progress:
    stage: str   # one of STAGES
    done: int
    total: int

    def to_json(self) -> dict:
        return {"stage": self.stage, "done": self.done, "total": self.total}


ProgressCallback = Callable[[Progress], None]

__all__ = ["CancelCheck", "CancelToken", "Cancelled", "Progress", "ProgressCallback", "STAGES",
           "raise_if_cancelled"]
