"""Argument types and the parser of the `mfmjt` command: numbers are checked when the command
line is read (finite, in range, seeds as 64-bit), and every mistake is one line with the fix."""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, NoReturn, Optional

from engine.timecode import TIMECODE, timecode_seconds


class OneLineParser(argparse.ArgumentParser):
    """argparse prints its usage block before the error; editors get one line naming the
    argument, what is wrong and where the help is."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def finite_float(*, minimum: Optional[float] = None,
                 maximum: Optional[float] = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            bounds = f"from {minimum:g} to {maximum:g}" if minimum is not None and maximum is not None \
                else f">= {minimum:g}" if minimum is not None else f"<= {maximum:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value
    return parse


def whole_number(*, minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not minimum <= value <= maximum:
            top = "2^64 - 1" if maximum == 2 ** 64 - 1 else str(maximum)
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {top}, got {text}")
        return value
    return parse


SEED = whole_number(minimum=0, maximum=2 ** 64 - 1)
STEPS = whole_number(minimum=1, maximum=1000)
TAKES = whole_number(minimum=1, maximum=64)
GUIDANCE = finite_float(minimum=0.0)
POSITIVE_SECONDS = finite_float(minimum=0.001)


@dataclass(frozen=True)
class TimePoint:
    """A --start / --end as typed: seconds, or a source timecode resolved against the media."""
    seconds: Optional[Fraction] = None
    timecode: Optional[str] = None

    def resolve(self, frame_rate: Optional[Fraction], source_timecode: Optional[str]) -> Fraction:
        """Seconds from the media's first frame. A timecode counts in the media's own timecode
        (its timecode track, or 00:00:00:00 when it has none), drop-frame when the media's
        timecode is (whatever separator was typed) or when the editor typed `;`."""
        if self.seconds is not None:
            return self.seconds
        rate = frame_rate or Fraction(25)
        drop = ";" in (source_timecode or "") or ";" in self.timecode
        start = timecode_seconds(source_timecode, rate, drop) if source_timecode else Fraction(0)
        return timecode_seconds(self.timecode, rate, drop) - start


def time_point(text: str) -> TimePoint:
    """Seconds ("12.5") or a source timecode ("01:00:04:12")."""
    if TIMECODE.match(text.strip()):
        return TimePoint(timecode=text.strip())
    try:
        seconds = finite_float(minimum=0.0)(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err} (seconds, or a timecode HH:MM:SS:FF)") from None
    return TimePoint(seconds=Fraction(seconds).limit_denominator(100000))


def user_error_line(err: Exception, flags: dict[str, str]) -> str:
    """A UserError in the command line's words: the message, and the option that sets the field
    at fault when the command has one."""
    flag = flags.get(getattr(err, "field", None) or "")
    return f"error: {err} ({flag})" if flag else f"error: {err}"


def os_error_line(err: OSError, where: object) -> str:
    """One line for an OSError: ours carry their own words (no errno); the machine's (a full
    disk, a read-only volume, a folder gone) are named by file and reason."""
    if err.errno is None:
        return f"error: {err}"
    return f"error: {err.filename or where}: {err.strerror or err}; nothing was kept"


DEVICE_HELP = ("where the models run: auto (a CUDA GPU when torch sees one, else Apple MPS, "
               "else the CPU), cpu, cuda, cuda:N or mps")


def add_device_option(parser) -> None:
    """`--device` for every command that runs a model (engine/devices.py checks it)."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
