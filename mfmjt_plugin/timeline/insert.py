"""Writing Foley back into a timeline: audio tracks named "FOLEY (MF-MJT)" holding the takes at
their record times (the chosen take on the enabled track, alternates on disabled tracks), a marker
over each generated region, our metadata under "mfmjt" (NLE.md). Every time is expressed at the
timeline rate; the WAVs carry their handles, the clips' source ranges only the body. Nothing else
in the timeline changes."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio

from mfmjt_plugin.timeline.segments import RT, TR

TRACK_NAME = "FOLEY (MF-MJT)"
METADATA_KEY = "mfmjt"


@dataclass(frozen=True)
class Placement:
    """One take of one generated region."""
    record_range: otio.opentime.TimeRange  # the body, in stack time at the timeline rate
    wav: Path
    take: int  # 1 = the chosen take
    head_handle: otio.opentime.RationalTime  # audio in the file before the body
    file_duration: otio.opentime.RationalTime  # the whole file, whole frames
    metadata: dict = field(default_factory=dict)


def _track(name: str, placements: list[Placement], rate: float, enabled: bool) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
    track.enabled = enabled
    cursor = RT(0, rate)
    for p in sorted(placements, key=lambda p: p.record_range.start_time.to_seconds()):
        start = p.record_range.start_time.rescaled_to(rate)
        if start < cursor:
            raise ValueError(f"takes overlap at {start}: regions must not overlap on one track")
        if start > cursor:
            track.append(otio.schema.Gap(source_range=TR(RT(0, rate), start - cursor)))
        reference = otio.schema.ExternalReference(
            target_url=p.wav.resolve().as_uri(),
            available_range=TR(RT(0, rate), p.file_duration.rescaled_to(rate)))
        clip = otio.schema.Clip(
            name=p.wav.stem, media_reference=reference,
            source_range=TR(p.head_handle.rescaled_to(rate),
                            p.record_range.duration.rescaled_to(rate)))
        clip.metadata[METADATA_KEY] = dict(p.metadata, take=p.take)
        track.append(clip)
        cursor = start + p.record_range.duration.rescaled_to(rate)
    return track


def insert_foley(timeline: otio.schema.Timeline, placements: list[Placement], *,
                 prompt: str = "") -> otio.schema.Timeline:
    """A copy of `timeline` with the Foley tracks and markers added (the input is not changed)."""
    result = copy.deepcopy(timeline)
    rate = next(iter(placements)).record_range.duration.rate if placements else 24.0
    takes = sorted({p.take for p in placements})
    for take in takes:
        mine = [p for p in placements if p.take == take]
        name = TRACK_NAME if take == 1 else f"{TRACK_NAME} alt {take}"
        result.tracks.append(_track(name, mine, rate, enabled=take == 1))
    for p in placements:
        if p.take == 1:
            marker = otio.schema.Marker(name=f"FOLEY: {prompt}" if prompt else "FOLEY",
                                        marked_range=p.record_range,
                                        color=otio.schema.MarkerColor.PURPLE)
            marker.metadata[METADATA_KEY] = dict(p.metadata)
            result.tracks.markers.append(marker)
    return result
