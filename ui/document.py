"""What the panel has open, without Qt: a movie, or a timeline (its sequence, video tracks, clips
and markers, the same selections as `mfmjt timeline foley`), its rate and timecode, the range the
editor chose, and where the picture at a time comes from. The widgets only show it."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

TIMELINE_SUFFIXES = {".otio", ".otioz", ".otiod", ".xml", ".fcpxml", ".edl", ".aaf", ".mlt"}


def is_timeline(path: Path) -> bool:
    return path.suffix.lower() in TIMELINE_SUFFIXES


@dataclass(frozen=True)
class ClipEntry:
    number: int  # 1-based, in the bridge's order (`--clip NUMBER`: names repeat)
    name: str
    track: int  # 1-based video track
    record_in: Fraction  # seconds from the timeline's start (stack time)
    record_out: Fraction
    media: Optional[str]


@dataclass(frozen=True)
class MarkerEntry:
    name: str
    colour: str
    record_in: Fraction
    record_out: Fraction


@dataclass
class Document:
    """A movie (`timeline` None) or a timeline. Times are seconds from the start of the movie's
    first frame, or of the timeline's first frame (record time minus its start timecode)."""
    path: Path
    duration: Fraction
    rate: Fraction
    has_picture: bool
    start_timecode: Fraction = Fraction(0)  # seconds since midnight of time 0
    drop_frame: bool = False
    timeline: object = None  # opentimelineio Timeline
    sequence: Optional[str] = None  # the 1-based number of the sequence shown
    sequences: list[str] = field(default_factory=list)
    rate_given: Optional[float] = None  # an EDL's frame rate, which the file does not say
    clips: list[ClipEntry] = field(default_factory=list)
    markers: list[MarkerEntry] = field(default_factory=list)
    tracks: int = 0

    @property
    def kind(self) -> str:
        return "timeline" if self.timeline is not None else "movie"

    # ----------------------------------------------------------------- time
    def frame(self, seconds: Fraction) -> int:
        return int(Fraction(seconds) * self.rate)

    def snap(self, seconds) -> Fraction:
        """The start of the frame that holds `seconds`, within the document."""
        frames = max(0, min(self.frame(Fraction(seconds).limit_denominator(10 ** 6)),
                            max(0, self.frame(self.duration) - 1)))
        return Fraction(frames) / self.rate

    def timecode(self, seconds) -> str:
        """The editor's timecode of the frame at `seconds` (drop-frame with ';' where the
        timeline counts that way)."""
        import opentimelineio as otio
        rate = float(self.rate)
        total = otio.opentime.RationalTime(self.frame(self.start_timecode + Fraction(seconds)), rate)
        return otio.opentime.to_timecode(total, rate, drop_frame=self.drop_frame)

    # ----------------------------------------------------------------- picture
    def picture_source(self, seconds: Fraction) -> Optional[tuple[Path, Fraction]]:
        """(media file, seconds into it) of the picture shown at `seconds`, or None (no
        picture there: a gap, a generator, offline media, an audio file)."""
        if self.timeline is None:
            return (self.path, Fraction(seconds)) if self.has_picture else None
        from mfmjt_plugin.timeline.segments import RT, TR, resolve_segments
        rate = float(self.rate)
        probe_range = TR(RT(self.frame(seconds), rate), RT(1, rate))
        for segment in resolve_segments(self.timeline, probe_range):
            if segment.generator is not None or not segment.media:
                continue
            media = Path(segment.media)
            if not media.is_file():
                return None
            origin = segment.media_start.to_seconds() if segment.media_start is not None else 0.0
            offset = segment.source_range.start_time.to_seconds() - origin
            return media, Fraction(offset).limit_denominator(10 ** 6)
        return None


def open_document(path: Path | str, *, sequence: Optional[str] = None,
                  rate: Optional[float] = None) -> Document:
    """A movie or a timeline, read; a clear one-line error (UserError) for anything else.
    `sequence`: the 1-based number of the sequence to show (default the first); `rate`: an
    EDL's frame rate (a UserError with field "rate" asks for it)."""
    from engine.errors import UserError
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; choose a movie or a timeline", field="file")
    if is_timeline(path):
        return _open_timeline(path, sequence, rate)
    from engine.media.decode import probe
    from engine.media.errors import MediaError
    try:
        info = probe(path)
    except MediaError as err:
        raise UserError(str(err), field="file") from None
    rate = info.frame_rate or Fraction(25)
    start = Fraction(0)
    if info.timecode:
        from engine.timecode import timecode_seconds
        start = timecode_seconds(info.timecode, rate)
    return Document(path=path, duration=info.duration, rate=rate, has_picture=info.has_video,
                    start_timecode=start, drop_frame=";" in (info.timecode or ""))


def _open_timeline(path: Path, sequence: Optional[str], given_rate: Optional[float]) -> Document:
    from mfmjt_plugin.timeline.io import read_sequences
    from mfmjt_plugin.timeline.segments import _video_tracks, timeline_rate
    from mfmjt_plugin.timeline.selection import (_markers, exact_rate, is_drop_frame,
                                                 visible_range_of)
    found = read_sequences(path, rate=exact_rate(given_rate) if given_rate else None)
    number = int(sequence) if sequence and sequence.isdigit() else 1
    if not 1 <= number <= len(found):
        from engine.errors import UserError
        raise UserError(f"{path}: no sequence {number}; it holds {len(found)}", field="sequence")
    timeline = found[number - 1]
    rate = Fraction(timeline_rate(timeline)).limit_denominator(1001)
    start = Fraction(timeline.global_start_time.to_seconds()).limit_denominator(10 ** 6) \
        if timeline.global_start_time else Fraction(0)
    clips = []
    tracks = _video_tracks(timeline.tracks)
    every = [(n, clip) for n, track in enumerate(tracks, start=1) for clip in track.find_clips()]
    for index, (track_number, clip) in enumerate(every, start=1):
        shown = visible_range_of(timeline, clip)  # through nesting, trims and warps
        if shown is None:
            continue
        media = getattr(clip.media_reference, "target_url", None)
        clips.append(ClipEntry(number=index, name=clip.name, track=track_number,
                               record_in=_seconds(shown.start_time),
                               record_out=_seconds(shown.end_time_exclusive()), media=media))
    markers = [MarkerEntry(name=m.name, colour=str(m.color), record_in=_seconds(r.start_time),
                           record_out=_seconds(r.end_time_exclusive()))
               for m, r in _markers(timeline)]
    duration = _seconds(timeline.tracks.duration())
    return Document(path=path, duration=duration, rate=rate, has_picture=bool(clips),
                    start_timecode=start, drop_frame=is_drop_frame(timeline), timeline=timeline,
                    sequence=str(number), sequences=[t.name for t in found], clips=clips,
                    markers=markers, tracks=len(tracks), rate_given=given_rate)


def _seconds(time) -> Fraction:
    return Fraction(time.to_seconds()).limit_denominator(10 ** 6)


__all__ = ["ClipEntry", "Document", "MarkerEntry", "is_timeline", "open_document"]
