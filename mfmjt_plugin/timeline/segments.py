"""What picture lies under a selection: Segments (media path, source range, record range, rate).

Per NLE.md: walk the tracks instead of trusting `range_of_child` (which ignores the trims of
nested compositions); map each clip's trimmed range to the top stack with
`transformed_time_range`, clamp it by the visible range of every enclosing composition, and map the
visible part back to source time. Disabled items and tracks are skipped; a `LinearTimeWarp` is
applied through its time scalar (frozen frames are refused); where several video tracks overlap,
the topmost enabled one is what the audience sees. Record times are stack times; the record
timecode is stack time + `global_start_time`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import opentimelineio as otio

from engine.errors import UserError

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange


class TimelineError(UserError):
    """A timeline that cannot be used as asked; the message names the file, clip or timecode."""


@dataclass(frozen=True)
class Segment:
    clip_name: str
    track_name: str
    media: Optional[str]  # a local path, or None when the media reference is missing
    source_range: otio.opentime.TimeRange  # in the media's own time
    record_range: otio.opentime.TimeRange  # in the top stack's time
    rate: float  # the timeline's frame rate
    time_scalar: float = 1.0
    # the media's own start (its start timecode) in source time: seconds into the file are
    # source time minus this
    media_start: Optional[otio.opentime.RationalTime] = None
    # what made the picture when no camera did (a slug, a title, bars: OTIO's generator kind);
    # such a segment covers what is beneath it but has no action to follow
    generator: Optional[str] = None


def _media_start(clip) -> Optional[otio.opentime.RationalTime]:
    available = getattr(clip.media_reference, "available_range", None)
    return available.start_time if available is not None else None


def _generator(clip) -> Optional[str]:
    ref = clip.media_reference
    if isinstance(ref, otio.schema.GeneratorReference):
        return ref.generator_kind or "generated"
    return None


def url_path(url: str) -> str:
    """A media URL as a path: file:// URLs decoded, anything else as written."""
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse
        return unquote(urlparse(url).path)
    return url


def media_path(clip: otio.schema.Clip) -> Optional[str]:
    ref = clip.media_reference
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        return url_path(ref.target_url)
    return None


def _scaled(duration, scalar: float):
    return RT(duration.value * scalar, duration.rate) if scalar != 1.0 else duration


def _walk(composition, window, to_record, emit, inherited_scalar: float) -> None:
    """Visit the visible clips of `composition`.

    window: (lo, hi) of the composition's internal time that is shown; to_record(t) maps its
    internal time to top-stack (record) time. A child placed at [p, p + D) in the composition
    shows its own time c0 + (t - p) * s (s: its LinearTimeWarp scalar), so nested trims and
    warps compose exactly, where OTIO's own range mapping would ignore both.
    """
    lo, hi = window
    children = list(enumerate(composition))
    if isinstance(composition, otio.schema.Stack):
        # a nested stack (a compound clip): its layers play at once; the top one first (what is
        # emitted first wins where layers overlap), and only its picture layers
        children = [(i, c) for i, c in reversed(children)
                    if not (isinstance(c, otio.schema.Track) and c.kind != otio.schema.TrackKind.Video)]
    for index, child in children:
        if isinstance(child, otio.schema.Transition) or not getattr(child, "enabled", True):
            continue
        placed = composition.range_of_child_at_index(index)
        p, p_end = placed.start_time, placed.end_time_exclusive()
        a, b = max(p, lo), min(p_end, hi)
        if b <= a:
            continue
        if isinstance(child, otio.schema.Gap):
            continue
        scalar = _time_scalar(child)
        if scalar <= 0:  # frozen or reversed: reported if it lies under the selection
            emit(child, TR.range_from_start_end_time(to_record(a), to_record(b)), None, 0.0)
            continue
        c0 = child.trimmed_range().start_time

        def to_child(t, p=p, c0=c0, scalar=scalar):
            return c0 + _scaled(t - p, scalar)

        def child_to_record(tau, p=p, c0=c0, scalar=scalar, outer=to_record):
            return outer(p + _scaled(tau - c0, 1.0 / scalar))

        if isinstance(child, otio.schema.Clip):
            emit(child, TR.range_from_start_end_time(to_record(a), to_record(b)),
                 TR.range_from_start_end_time(to_child(a), to_child(b)),
                 inherited_scalar * scalar)
        elif isinstance(child, otio.core.Composition):
            _walk(child, (to_child(a), to_child(b)), child_to_record, emit,
                  inherited_scalar * scalar)


def _time_scalar(item) -> float:
    scalar = 1.0
    for effect in getattr(item, "effects", []):
        if isinstance(effect, otio.schema.FreezeFrame):
            return 0.0
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar *= effect.time_scalar
    return scalar


def _video_tracks(stack) -> list:
    return [t for t in stack if isinstance(t, otio.schema.Track)
            and t.kind == otio.schema.TrackKind.Video and t.enabled]


def _subtract(range_, covers):
    """Parts of range_ not covered by any range in covers."""
    parts = [(range_.start_time, range_.end_time_exclusive())]
    for cover in covers:
        c0, c1 = cover.start_time, cover.end_time_exclusive()
        next_parts = []
        for a, b in parts:
            if c1 <= a or c0 >= b:
                next_parts.append((a, b))
                continue
            if a < c0:
                next_parts.append((a, c0))
            if c1 < b:
                next_parts.append((c1, b))
        parts = next_parts
    return [TR.range_from_start_end_time(a, b) for a, b in parts if b > a]


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    if timeline.global_start_time is not None:
        return timeline.global_start_time.rate
    for clip in timeline.find_clips():
        return clip.trimmed_range().duration.rate
    raise TimelineError(f"timeline {timeline.name!r} has no clips to take a frame rate from")


def resolve_segments(timeline: otio.schema.Timeline, selection: otio.opentime.TimeRange, *,
                     see_through_generated: bool = False) -> list[Segment]:
    """The visible video under `selection` (top-stack time), in record order, topmost track
    winning where tracks overlap. `see_through_generated`: titles, slugs and other generated
    pictures neither count nor hide what is below them (the editor named a clip or a track:
    a title over it must not take its Foley away)."""
    top = timeline.tracks
    rate = timeline_rate(timeline)
    taken: list[otio.opentime.TimeRange] = []
    segments: list[Segment] = []
    lo, hi = selection.start_time, selection.end_time_exclusive()
    for track in reversed(_video_tracks(top)):  # the last track is drawn on top
        found = []

        def emit(clip, record, source, scalar, found=found):
            found.append((clip, record, source, scalar))

        _walk_track(track, top, emit)
        covered = []
        for clip, record, source, scalar in found:
            if see_through_generated and _generator(clip) is not None:
                continue
            a, b = max(record.start_time, lo), min(record.end_time_exclusive(), hi)
            if b <= a:
                continue
            if scalar <= 0:
                raise TimelineError(f"{type(clip).__name__.lower()} {clip.name!r} is frozen (a freeze frame or a zero "
                                    f"speed) under the selection; its picture does not move, so "
                                    f"there is nothing to synchronise Foley to; select around it")
            # earlier tracks (above) and, inside a nested stack, its upper layers hide this
            for part in _subtract(TR.range_from_start_end_time(a, b), taken + covered):
                offset = part.start_time - record.start_time
                source_start = source.start_time + _scaled(offset, scalar)
                segments.append(Segment(
                    clip_name=clip.name, track_name=track.name, media=media_path(clip),
                    source_range=TR(source_start, _scaled(part.duration, scalar)),
                    record_range=part, rate=rate, time_scalar=scalar,
                    media_start=_media_start(clip), generator=_generator(clip)))
            covered.append(TR.range_from_start_end_time(a, b))
        taken.extend(covered)
    return sorted(segments, key=lambda s: s.record_range.start_time.to_seconds())


def _walk_track(track, top, emit) -> None:
    """A top-level track: its internal time maps to the stack's by its own trim."""
    trimmed = track.trimmed_range()
    placed = top.range_of_child(track)

    def to_record(t, t0=trimmed.start_time, r0=placed.start_time):
        return r0 + (t - t0)

    _walk(track, (trimmed.start_time, trimmed.end_time_exclusive()), to_record, emit, 1.0)
