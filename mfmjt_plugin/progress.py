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
