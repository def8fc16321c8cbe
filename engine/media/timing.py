"""Exact time values at the engine boundary: rationals in, rationals out (NLE.md)."""
from __future__ import annotations

from fractions import Fraction
from typing import Union

TimeValue = Union[Fraction, int, float, str]


def as_fraction(value: TimeValue) -> Fraction:
    """Seconds as an exact Fraction. Floats are read as the short decimal they print as
    (0.1 -> 1/10), not as their binary expansion."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"time must be finite, got {value}")
        return Fraction(repr(value))
    return Fraction(value)


def frame_targets(start: Fraction, duration: Fraction, fps: Fraction) -> list[Fraction]:
    """Target times start + k / fps for k = 0 .. floor(duration * fps) - 1."""
    count = int(duration * fps)  # floor for positive values
    return [start + Fraction(k) / fps for k in range(count)]
