"""A tqdm bar that opens at the first progress report, so a command that fails at once prints
only its one-line error."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def lazy_bar(desc: str, unit: str, *, disable: bool = False) -> Iterator[Callable[[int, int], None]]:
    from tqdm import tqdm
    bars = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc=desc, unit=unit, total=total, disable=disable, leave=False))
        bars[0].update(done - bars[0].n)
    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()


STAGE_UNITS = {"features": "window", "sampling": "step", "decoding": "take", "writing": "file"}


@contextmanager
def stage_bars(*, disable: bool = False) -> Iterator[Callable]:
    """A tqdm bar per stage of the engine's `Progress` events, opened at a stage's first event
    and shown only when the stage lasts over a second."""
    from tqdm import tqdm
    bars: dict[str, object] = {}

    def progress(event) -> None:
        bar = bars.get(event.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[event.stage] = tqdm(desc=event.stage, total=event.total, delay=1.0,
                                           unit=STAGE_UNITS.get(event.stage, "it"),
                                           disable=disable, leave=False)
        bar.total = event.total
        bar.update(event.done - bar.n)
    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()
