"""Selections -> a record range in top-stack time: in/out timecodes (drop-frame when written with
';'), a marker (by name or colour), a clip (by name or 1-based number), a video track, or all.
Record timecode = stack time + the timeline's global start time (NLE.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import opentimelineio as otio

from mfmjt_plugin.timeline.segments import (RT, TR, TimelineError, _video_tracks, _walk_track,
                                            timeline_rate)

NTSC = {23.98: 24000 / 1001, 23.976: 24000 / 1001, 29.97: 30000 / 1001, 59.94: 60000 / 1001,
        47.95: 48000 / 1001, 119.88: 120000 / 1001}


@dataclass(frozen=True)
class Selection:
    tc_in: Optional[str] = None
    tc_out: Optional[str] = None
    marker: Optional[str] = None
    clip: Optional[str] = None
    track: Optional[int] = None  # none of these: the whole timeline

    def describe(self) -> str:
        if self.tc_in is not None:
            return f"{self.tc_in}-{self.tc_out}"
        for name in ("marker", "clip", "track"):
            if getattr(self, name) is not None:
                return f"{name} {getattr(self, name)}"
        return "the whole timeline"


def exact_rate(rate: float) -> float:
    """23.976 -> 24000/1001 and friends: OTIO refuses rounded NTSC rates."""
    for rounded, exact in NTSC.items():
        if abs(rate - rounded) < 0.006:
            return exact
    return rate


def _start(timeline) -> otio.opentime.RationalTime:
    rate = timeline_rate(timeline)
    start = timeline.global_start_time
    return start.rescaled_to(rate) if start is not None else RT(0, rate)


def parse_timecode(timeline, text: str) -> otio.opentime.RationalTime:
    """A record timecode as stack time; `;` before the frames means drop-frame."""
    rate = exact_rate(timeline_rate(timeline))
    try:
        record = otio.opentime.from_timecode(text, rate)
    except Exception as err:
        raise TimelineError(f"timecode {text!r}: not a valid timecode at {rate:.3f} fps "
                            f"({err})") from None
    return (record - _start(timeline)).rescaled_to(timeline_rate(timeline))


def is_drop_frame(timeline) -> bool:
    """Whether the timeline counts drop-frame timecode: only 29.97 / 59.94 can, and only when the
    source says so (FCP7 XML's displayformat; our own metadata). OTIO itself does not record it,
    and its writer would default to DF for these rates, so the default here is NDF."""
    rate = exact_rate(timeline_rate(timeline))
    if rate not in (30000 / 1001, 60000 / 1001):
        return False
    fcp = (timeline.metadata.get("fcp_xml") or {}).get("timecode") or {}
    ours = timeline.metadata.get("mfmjt") or {}
    return fcp.get("displayformat") == "DF" or bool(ours.get("drop_frame"))


def to_timecode(timeline, stack_time, *, drop_frame: Optional[bool] = None) -> str:
    """Record timecode of a stack time; drop-frame as the timeline counts unless told."""
    rate = exact_rate(timeline_rate(timeline))
    record = (stack_time + _start(timeline)).rescaled_to(rate)
    if drop_frame is None:
        drop_frame = is_drop_frame(timeline)
    return otio.opentime.to_timecode(record, rate, drop_frame=drop_frame)


def _markers(timeline):
    """(marker, its range in stack time) for markers on the stack, tracks and clips (every
    descendant: `find_children` includes the tracks)."""
    top = timeline.tracks
    for marker in top.markers:
        yield marker, marker.marked_range
    for item in top.find_children():
        for marker in getattr(item, "markers", []):
            yield marker, item.transformed_time_range(marker.marked_range, top)


def visible_range_of(timeline, wanted) -> Optional[otio.opentime.TimeRange]:
    """Where a clip is seen in stack time (its trims and every enclosing trim applied)."""
    shown = []

    def emit(clip, record, source, scalar):
        if clip is wanted:
            shown.append(record)

    for track in _video_tracks(timeline.tracks):
        _walk_track(track, timeline.tracks, emit)
    if not shown:
        return None
    return TR.range_from_start_end_time(min(r.start_time for r in shown),
                                        max(r.end_time_exclusive() for r in shown))


def selection_range(timeline: otio.schema.Timeline, selection: Selection) -> otio.opentime.TimeRange:
    top = timeline.tracks
    duration = top.duration()
    whole = TR(RT(0, duration.rate), duration)
    if selection.tc_in is not None or selection.tc_out is not None:
        if selection.tc_in is None or selection.tc_out is None:
            raise TimelineError("give both --in and --out timecodes")
        start, end = parse_timecode(timeline, selection.tc_in), parse_timecode(timeline, selection.tc_out)
        chosen = TR.range_from_start_end_time(start, end) if end > start else None
        if chosen is None:
            raise TimelineError(f"--out {selection.tc_out} is not after --in {selection.tc_in}")
    elif selection.marker is not None:
        wanted = selection.marker.lower()
        hits = [r for m, r in _markers(timeline)
                if m.name.lower() == wanted or str(m.color).lower() == wanted]
        if not hits:
            names = sorted({f"{m.name} ({m.color})" for m, _ in _markers(timeline)})
            raise TimelineError(f"no marker named or coloured {selection.marker!r}; markers: "
                                f"{', '.join(names) or 'none'}")
        chosen = hits[0]
        if chosen.duration.value == 0:
            raise TimelineError(f"marker {selection.marker!r} has no duration; give it a range "
                                f"in the editor or select by timecode")
    elif selection.clip is not None:
        clips = [c for track in _video_tracks(top) for c in track.find_clips()]
        match = [c for i, c in enumerate(clips, 1) if selection.clip in (c.name, str(i))]
        if not match:
            raise TimelineError(f"no video clip named or numbered {selection.clip!r} "
                                f"({len(clips)} clips)")
        if len(match) > 1:
            def where(clip):
                shown = visible_range_of(timeline, clip)
                at = to_timecode(timeline, shown.start_time) if shown else "not visible"
                return f"#{clips.index(clip) + 1} at {at}"
            raise TimelineError(f"{len(match)} video clips are named {selection.clip!r}: "
                                f"{', '.join(where(c) for c in match)}; pick one with "
                                f"--clip NUMBER")
        chosen = visible_range_of(timeline, match[0])
        if chosen is None:
            raise TimelineError(f"clip {selection.clip!r} is trimmed away by its nesting; "
                                f"nothing of it is visible")
    elif selection.track is not None:
        tracks = _video_tracks(top)
        if not 1 <= selection.track <= len(tracks):
            raise TimelineError(f"no enabled video track {selection.track}; there are "
                                f"{len(tracks)}")
        track = tracks[selection.track - 1]
        chosen = track.transformed_time_range(track.trimmed_range(), top)
    else:
        chosen = whole
    if chosen.start_time < whole.start_time or chosen.end_time_exclusive() > whole.end_time_exclusive():
        raise TimelineError(f"selection {selection.describe()} lies outside the timeline "
                            f"({to_timecode(timeline, whole.start_time)}-"
                            f"{to_timecode(timeline, whole.end_time_exclusive())})")
    return chosen
