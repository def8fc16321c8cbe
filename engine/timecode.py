"""SMPTE timecodes as frame counts and seconds, counted by OpenTimelineIO (as the timeline
selections are), for every front end: a movie's timecode track, a typed --start, a BWF's time
reference."""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Optional

from engine.errors import UserError

TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2})$")


def timecode_frames(text: str, rate: Fraction, drop: Optional[bool] = None) -> int:
    """HH:MM:SS:FF -> a frame count from midnight, counted by OpenTimelineIO (as the timeline
    selections are); drop-frame at 29.97 / 59.94 when `drop`, or when typed with `;`."""
    match = TIMECODE.match(text.strip())
    if match is None:
        raise UserError(f"timecode {text!r} is not HH:MM:SS:FF", field="timecode")
    hours, minutes, seconds, separator, frames = match.groups()
    drop = separator == ";" if drop is None else drop
    import opentimelineio as otio
    try:
        return round(otio.opentime.from_timecode(
            f"{hours}:{minutes}:{seconds}{';' if drop else ':'}{frames}", float(rate)).value)
    except Exception as err:  # OTIO's own words: frames beyond the rate, and the like
        raise UserError(f"timecode {text!r} is not valid at this movie's rate ({err})",
                        field="timecode") from None


def timecode_seconds(text: str, rate: Fraction, drop: Optional[bool] = None) -> Fraction:
    return Fraction(timecode_frames(text, rate, drop)) / Fraction(rate)


__all__ = ["TIMECODE", "timecode_frames", "timecode_seconds"]
