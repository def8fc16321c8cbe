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
    sequence: Optional[str] = None
    sequences: list[str] = field(default_factory=list)
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


def open_document(path: Path | str, *, sequence: Optional[str] = None) -> Document:
    """A movie or a timeline, read; a clear one-line error (UserError) for anything else."""
    from engine.errors import UserError
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; choose a movie or a timeline", field="file")
    if is_timeline(path):
        return _open_timeline(path, sequence)
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


def _open_timeline(path: Path, sequence: Optional[str]) -> Document:
    import opentimelineio as otio

    from mfmjt_plugin.timeline.io import read_timeline, sequences
    from mfmjt_plugin.timeline.segments import _video_tracks, timeline_rate
    from mfmjt_plugin.timeline.selection import _markers, is_drop_frame
    timeline = read_timeline(path, sequence=sequence)
    names = []
    try:
        raw = otio.adapters.read_from_file(str(path)) if path.suffix.lower() in (".xml",) else None
        names = [t.name for t in sequences(raw)] if raw is not None else []
    except Exception:  # the picker is a convenience; the sequence was read above
        names = []
    rate = Fraction(timeline_rate(timeline)).limit_denominator(1001)
    start = Fraction(timeline.global_start_time.to_seconds()).limit_denominator(10 ** 6) \
        if timeline.global_start_time else Fraction(0)
    clips = []
    for number, track in enumerate(_video_tracks(timeline.tracks), start=1):
        for clip in track.find_clips():
            window = clip.trimmed_range_in_parent()
            if window is None:
                continue
            media = getattr(clip.media_reference, "target_url", None)
            clips.append(ClipEntry(name=clip.name, track=number,
                                   record_in=_seconds(window.start_time),
                                   record_out=_seconds(window.end_time_exclusive()), media=media))
    markers = [MarkerEntry(name=m.name, colour=str(m.color), record_in=_seconds(r.start_time),
                           record_out=_seconds(r.end_time_exclusive()))
               for m, r in _markers(timeline)]
    duration = _seconds(timeline.tracks.duration())
    return Document(path=path, duration=duration, rate=rate, has_picture=bool(clips),
                    start_timecode=start, drop_frame=is_drop_frame(timeline), timeline=timeline,
                    sequence=sequence or (names[0] if names else timeline.name),
                    sequences=names or [timeline.name], clips=clips, markers=markers,
                    tracks=len(_video_tracks(timeline.tracks)))


def _seconds(time) -> Fraction:
    return Fraction(time.to_seconds()).limit_denominator(10 ** 6)


__all__ = ["ClipEntry", "Document", "MarkerEntry", "is_timeline", "open_document"]
