"""`mfmjt timeline foley`: selection -> segments -> takes (with handles) -> a new timeline version
holding the Foley tracks, beside the source. The source timeline and media are only read."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import opentimelineio as otio

from engine.naming import handles, timeline_take_paths, timeline_take_stem
from mfmjt_plugin.timeline import fcp7_patch, fcpxml_patch
from mfmjt_plugin.timeline.insert import Placement, insert_foley
from mfmjt_plugin.timeline.io import read_timeline, write_new_version, write_text_version
from mfmjt_plugin.timeline.segments import RT, TR, Segment, TimelineError, resolve_segments
from mfmjt_plugin.timeline.selection import Selection, exact_rate, selection_range, to_timecode



@dataclass(frozen=True)
class FoleySettings:
    prompt: str = ""
    negative_prompt: str = ""
    takes: int = 1
    best_of: Optional[int] = None  # candidates per segment; the `takes` best in sync are kept
    guidance: Optional[float] = None
    mode: Optional[str] = None
    steps: Optional[int] = None
    seed: int = 0
    bundle: str = "starter"
    device: str = "auto"


def merge_contiguous(segments: list[Segment]) -> list[Segment]:
    """Join neighbours that continue the same media without a jump (a razor cut, a clip split
    across layers), so each continuous shot is generated in one request."""
    merged: list[Segment] = []
    for segment in segments:
        last = merged[-1] if merged else None
        if (last is not None and last.media == segment.media and last.media is not None
                and last.time_scalar == segment.time_scalar
                and last.record_range.end_time_exclusive() == segment.record_range.start_time
                and last.source_range.end_time_exclusive() == segment.source_range.start_time):
            merged[-1] = replace(last, record_range=TR(
                last.record_range.start_time,
                last.record_range.duration + segment.record_range.duration),
                source_range=TR(last.source_range.start_time,
                                last.source_range.duration + segment.source_range.duration),
                clip_name=last.clip_name if last.clip_name == segment.clip_name
                else f"{last.clip_name}+{segment.clip_name}")
        else:
            merged.append(segment)
    return merged


MEDIA_FILE = re.compile(r"\.(mov|mp4|m4v|mxf|avi|mkv|mts|webm)$", re.I)


def _by_clip_name(clip_name: str, search: Path) -> list[Path]:
    """Movies under `search` named after a clip that has no media reference (an EDL event:
    "ZZ100_501 (LAY3)" is ZZ100_501.mov; a clip named with its file name matches that file)."""
    wanted = {clip_name.lower(), re.sub(r"\s*\(.*\)\s*$", "", clip_name).lower()}
    return sorted(p for p in search.rglob("*") if p.is_file() and MEDIA_FILE.search(p.name)
                  and (p.name.lower() in wanted or p.stem.lower() in wanted))


def relink(segments: list[Segment], search: Optional[Path]) -> dict[str, Path]:
    """media path -> a readable file: as written, or found under `search` by the file's name
    (or, for a clip without a media reference, by the clip's name)."""
    found: dict[str, Path] = {}
    missing = []
    for segment in segments:
        key = segment.media or f"<no media: {segment.clip_name}>"
        if key in found:
            continue
        path = Path(segment.media) if segment.media else None
        if path is not None and path.is_file():
            found[key] = path
            continue
        if search is not None:
            hits = sorted(Path(search).rglob(path.name)) if path is not None else \
                _by_clip_name(segment.clip_name, Path(search))
            if hits:
                found[key] = hits[0]
                continue
        missing.append(f"{segment.clip_name} ({segment.media or 'no media reference'})")
    if missing:
        hint = "; relink with --search FOLDER" if search is None else f"; not found under {search}"
        raise TimelineError(f"offline media under the selection: {', '.join(missing)}{hint}")
    return found


def _media_seconds(segment: Segment, reference_start) -> tuple[Fraction, Fraction]:
    """The segment's source range in seconds from the media file's start."""
    start = segment.source_range.start_time - reference_start
    return (Fraction(start.to_seconds()).limit_denominator(10 ** 6),
            Fraction(segment.source_range.duration.to_seconds()).limit_denominator(10 ** 6))


@dataclass
class FoleyPlan:
    """A `timeline foley` run before any take exists: what the panel and `make_foley` share.
    `request(i)` is segment i's take request (its take names are drawn when it is asked for, so
    two segments of one clip get consecutive versions); `placements(i, report)` places that
    segment's takes; `deliver(placements)` writes the new timeline version."""
    job: "_Job"
    segments: list[Segment]
    generated: list[Segment]  # slugs, titles, mattes: seen, never filmed, skipped
    created_media_dir: bool

    def describe_skipped(self) -> list[dict]:
        return [{"clip": s.clip_name, "reason": f"generated picture ({s.generator})",
                 **self.job.record(s)} for s in self.generated]

    def request(self, index: int):
        return segment_request(self.job, self.segments[index], index)

    def placements(self, index: int, report) -> tuple[list[Placement], list[dict]]:
        return segment_placements(self.job, self.segments[index], report)

    def deliver(self, placements: list[Placement]) -> Path:
        return deliver_timeline(self.job, placements, self.job.timeline_dir, self.job.picture_size)


def plan_foley(timeline_path: Path | str, selection: Selection, settings: FoleySettings, *,
               rate: Optional[float] = None, sequence: Optional[str] = None,
               fmt: Optional[str] = None, out_dir: Optional[Path] = None,
               search: Optional[Path] = None, timeline_dir: Optional[Path] = None) -> FoleyPlan:
    """Read the timeline, resolve the selection to segments with picture, relink their media and
    check, before any work, that the takes folder and the new timeline can be written."""
    from engine.media.decode import probe
    source = Path(timeline_path)
    timeline = read_timeline(source, rate=exact_rate(rate) if rate else None, sequence=sequence)
    chosen = selection_range(timeline, selection)
    named = selection.clip is not None or selection.track is not None
    visible = [s for s in resolve_segments(timeline, chosen, see_through_generated=named)
               if s.record_range.duration.value > 0]
    # slugs, titles and mattes are seen but were never filmed: nothing moves in them to follow
    generated = [s for s in visible if s.generator is not None]
    segments = merge_contiguous([s for s in visible if s.generator is None])
    if not segments:
        only = "; only generated pictures there: " + ", ".join(
            f"{s.clip_name} ({s.generator})" for s in generated) if generated else ""
        raise TimelineError(f"{source}: no video under {selection.describe()}{only}; select a "
                            f"range with picture")
    files = relink(segments, search)
    out_dir = Path(out_dir) if out_dir else source.parent / f"{source.stem}_foley_media"
    timeline_dir = Path(timeline_dir) if timeline_dir else source.parent
    # report timecodes the way the editor counts them: drop-frame if they typed it or the
    # timeline says so
    drop = True if ";" in (selection.tc_in or "") else None

    def record(segment: Segment) -> dict:
        return {"record_in": to_timecode(timeline, segment.record_range.start_time,
                                         drop_frame=drop),
                "record_out": to_timecode(timeline, segment.record_range.end_time_exclusive(),
                                          drop_frame=drop)}

    first = probe(files[segments[0].media or f"<no media: {segments[0].clip_name}>"])
    sequence_index = int(sequence) - 1 if sequence and sequence.isdigit() else 0
    job = _Job(timeline=timeline, source=source, settings=settings, out_dir=out_dir,
               timeline_dir=timeline_dir, fmt=fmt, record=record, sequence_index=sequence_index,
               files=files,
               picture_size=first.display_size if first.has_video else (1920, 1080))
    plan = FoleyPlan(job=job, segments=segments, generated=generated,
                     created_media_dir=not out_dir.exists())
    try:
        for folder, what, name in ((out_dir, "the takes", "media_out"),
                                   (timeline_dir, "the new timeline", "timeline_out")):
            ensure_writable(folder, what, name)
        preflight_write(job, segments)
    except BaseException:
        discard(plan, [])  # the takes folder the check made, if it made one
        raise
    return plan


def discard(plan: FoleyPlan, written: list[Path]) -> None:
    """Nothing half-done is left: the takes of an interrupted or failed run go with it."""
    for path in written:
        path.unlink(missing_ok=True)
    out_dir = plan.job.out_dir
    if plan.created_media_dir and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def make_foley(timeline_path: Path | str, selection: Selection, settings: FoleySettings, *,
               rate: Optional[float] = None, sequence: Optional[str] = None,
               fmt: Optional[str] = None, out_dir: Optional[Path] = None,
               search: Optional[Path] = None, timeline_dir: Optional[Path] = None,
               progress: Optional[Callable[[int, int], None]] = None,
               cancel: Optional[Callable[[], bool]] = None, engine: Optional[str] = None) -> dict:
    """A new version of the timeline with Foley takes under the selection. `engine`: a running
    service's URL (or `auto`) to generate on, instead of this process."""
    plan = plan_foley(timeline_path, selection, settings, rate=rate, sequence=sequence, fmt=fmt,
                      out_dir=out_dir, search=search, timeline_dir=timeline_dir)
    written: list[Path] = []
    try:
        report = _generate_and_insert(plan, progress, written, cancel, engine)
        report["selection"] = selection.describe()
        report["skipped"] = plan.describe_skipped()
        return report
    except BaseException:
        discard(plan, written)
        raise


def ensure_writable(folder: Path, what: str, field_name: str) -> None:
    """Fail before any work if `folder` cannot take new files (read-only volume, permissions, a
    file in the way)."""
    from engine.atomic import unwritable_reason
    reason = unwritable_reason(folder)
    if reason is not None:
        raise TimelineError(f"{folder}: cannot write there ({reason}); choose another folder "
                            f"for {what}", field=field_name)


@dataclass(frozen=True)
class _Job:
    """What every segment of one `timeline foley` run shares."""
    timeline: otio.schema.Timeline
    source: Path
    settings: FoleySettings
    out_dir: Path
    timeline_dir: Path
    fmt: Optional[str]
    record: Callable[[Segment], dict]  # a segment's record in/out timecodes for the report
    sequence_index: int = 0  # which of the source's sequences (0-based), for FCP7 patching
    files: dict = field(default_factory=dict)  # media key -> the file it was relinked to
    picture_size: tuple[int, int] = (1920, 1080)  # the first segment's picture (writers' format)


def _patches_fcp7(source: Path, fmt: Optional[str]) -> bool:
    """An FCP7 XML source delivered as FCP7 XML gets its own document back plus our tracks."""
    return source.suffix.lower() == ".xml" and fmt in (None, "xml")


def _patches_fcpxml(source: Path, fmt: Optional[str]) -> bool:
    """So does an FCPXML source delivered as FCPXML."""
    return source.suffix.lower() == ".fcpxml" and fmt in (None, "fcpxml")


class _Span(NamedTuple):
    """Where a segment's take is cut from its media: the body and its whole-frame handles."""
    media: Path
    body_start: Fraction
    body_duration: Fraction
    record_offset: Fraction
    head_frames: int
    head: Fraction
    tail: Fraction


def _segment_span(job: _Job, segment: Segment) -> _Span:
    """One computation for the request and the placement, so the handle a take was cut with is
    the handle it is placed with."""
    from engine.media.decode import probe
    media = job.files[segment.media or f"<no media: {segment.clip_name}>"]
    info = probe(media)
    body_start, body_duration = _media_seconds(segment, _media_origin(segment, info))
    record_offset = Fraction(segment.record_range.start_time.to_seconds()).limit_denominator(10 ** 6)
    head_frames, head, tail = handles(body_start, body_duration, info.duration, record_offset,
                                      _frame_rate(segment))
    return _Span(media, body_start, body_duration, record_offset, head_frames, head, tail)


def segment_request(job: _Job, segment: Segment, index: int):
    """Segment `index`'s TakeRequest: its media range with whole-frame handles, the timeline's
    take names (the next free version now), time of day and rate."""
    from engine.jobs import TakeRequest
    settings, timeline = job.settings, job.timeline
    start_tc = timeline.global_start_time.to_seconds() if timeline.global_start_time else 0.0
    span = _segment_span(job, segment)
    stem = timeline_take_stem(timeline.name, segment.clip_name, settings.prompt)
    version, paths = timeline_take_paths(job.out_dir, stem, settings.takes)
    return TakeRequest(
        media=span.media, out=job.out_dir, start=span.body_start - span.head,
        end=span.body_start + span.body_duration + span.tail, prompt=settings.prompt,
        negative_prompt=settings.negative_prompt, guidance=settings.guidance,
        mode=settings.mode, steps=settings.steps,
        seed=(settings.seed + 1000 * index) % 2 ** 64, takes=settings.takes,
        best_of=settings.best_of, bundle=settings.bundle, device=settings.device,
        preview=False, paths=tuple(paths),
        record_start=Fraction(start_tc).limit_denominator(10 ** 6) + span.record_offset,
        frame_rate=_frame_rate(segment), head_handle=span.head,
        extra_provenance={"version": version, "source_clip": segment.clip_name})


def _frame_rate(segment: Segment) -> Fraction:
    return Fraction(exact_rate(segment.rate)).limit_denominator(1001)


def segment_placements(job: _Job, segment: Segment, report) -> tuple[list[Placement], list[dict]]:
    """(placements, report rows) of one segment's delivered takes (a `TakesReport`)."""
    from engine.media.bwf import OUTPUT_RATE
    frame_rate, rate = _frame_rate(segment), segment.rate
    head_frames = _segment_span(job, segment).head_frames  # as segment_request cut it
    file_frames = _file_frames(report.takes[0].path, frame_rate, OUTPUT_RATE)
    placements, rows = [], []
    for take in report.takes:
        placements.append(Placement(
            record_range=segment.record_range, wav=take.path, take=take.index,
            head_handle=RT(head_frames, rate), file_duration=RT(file_frames, rate),
            metadata=dict(report.provenance, take_seed=take.seed, sync_score=take.sync_score)))
        rows.append({"wav": str(take.path), "take": take.index, "clip": segment.clip_name,
                     "seed": take.seed, "sync_score": take.sync_score, **job.record(segment)})
    return placements, rows


def _generate_and_insert(plan: FoleyPlan, progress: Optional[Callable[[int, int], None]],
                         written: list[Path], cancel: Optional[Callable[[], bool]],
                         engine: Optional[str] = None) -> dict:
    """Generate each segment's takes (appending every WAV to `written` as it lands), then write
    the new timeline version."""
    from engine.jobs import TakeRequest, TakesReport, generate_takes, load_pipeline

    job, settings = plan.job, plan.job.settings
    # video features cached on disk: regenerating with other seeds or guidance, or re-running a
    # cancelled job, does not look at the picture again
    if engine is None:
        pipeline = load_pipeline(settings.bundle, device=settings.device)

        def takes_of(request: TakeRequest) -> TakesReport:
            return generate_takes(request, pipeline=pipeline, cancel=cancel)
    else:  # the service's own bundle generates
        from mfmjt_plugin.remote import connect, run_job
        client = connect(engine)

        def takes_of(request: TakeRequest) -> TakesReport:
            return TakesReport.from_json(run_job(client, request))
    placements, takes_report = [], []
    for index in range(len(plan.segments)):
        report = takes_of(plan.request(index))
        written.extend(t.path for t in report.takes)
        placed, rows = plan.placements(index, report)
        placements += placed
        takes_report += rows
        if progress is not None:
            progress(index + 1, len(plan.segments))
    written_timeline = plan.deliver(placements)
    report = {"timeline": str(written_timeline), "takes": takes_report,
              "segments": len(plan.segments)}
    if _companion_only(job.source, job.fmt):
        report["companion"] = COMPANION_NOTE
    return report


# AAF writers cannot carry an editor's whole timeline (effects, nested sequences, rates of other
# tools): the AAF we deliver holds only the Foley, at the timeline's record times, to import
# beside the editor's own sequence, as post houses deliver AAFs to Pro Tools.
COMPANION_NOTE = ("the AAF holds only the Foley tracks and markers at their record times: import "
                  "it next to your sequence (your timeline is unchanged)")


def _companion_only(source: Path, fmt: Optional[str]) -> bool:
    return (fmt or source.suffix.lower().lstrip(".")) == "aaf"


def foley_only(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """An empty timeline with the editor's name, start timecode and rate, for the Foley alone."""
    result = otio.schema.Timeline(name=f"{timeline.name} FOLEY",
                                  global_start_time=timeline.global_start_time)
    result.metadata.update(copy.deepcopy(dict(timeline.metadata)))
    return result


def deliver_timeline(job: _Job, placements: list[Placement], folder: Path,
                     picture_size: tuple[int, int]) -> Path:
    """Write the new timeline version into `folder`: the editor's FCP7 or FCPXML document
    patched, a Foley-only AAF companion, or the timeline plus Foley through the format's writer."""
    prompt = job.settings.prompt
    if _patches_fcp7(job.source, job.fmt):
        text = fcp7_patch.patched_document(job.source, job.timeline.name, job.sequence_index,
                                           placements, prompt=prompt, files=job.files)
        return write_text_version(text, job.source, folder=folder)
    if _patches_fcpxml(job.source, job.fmt):
        text = fcpxml_patch.patched_document(job.source, job.timeline.name, job.sequence_index,
                                             placements, prompt=prompt, files=job.files)
        return write_text_version(text, job.source, folder=folder)
    base = foley_only(job.timeline) if _companion_only(job.source, job.fmt) else \
        relinked(job.timeline, job.files)
    result_timeline = insert_foley(base, placements, prompt=prompt)
    return write_new_version(result_timeline, job.source, fmt=job.fmt, folder=folder,
                             picture_size=picture_size)


def relinked(timeline: otio.schema.Timeline, files: dict[str, Path]) -> otio.schema.Timeline:
    """A copy whose clips point at the files they were relinked to, so the new version opens
    online (the source keeps its own paths)."""
    from mfmjt_plugin.timeline.segments import media_path
    moved = {key: path for key, path in files.items()
             if key.startswith("<no media: ") or Path(key) != path}
    if not moved:
        return timeline
    result = timeline.deepcopy()
    for clip in result.find_clips():
        key = media_path(clip) or f"<no media: {clip.name}>"
        if key in moved:
            old = clip.media_reference
            clip.media_reference = otio.schema.ExternalReference(
                target_url=moved[key].resolve().as_uri(),
                available_range=getattr(old, "available_range", None))
    return result


def preflight_write(job: _Job, segments: list[Segment]) -> None:
    """Write the result format once with stand-in takes into a scratch folder before any take is
    generated: a format that cannot hold this timeline fails now, in one line, not after minutes
    of generation."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="mfmjt-preflight-") as scratch:
        # stand-in files that exist: bundle writers (.otioz, .otiod) copy every take they name
        placements = []
        for i, s in enumerate(segments):
            for take in range(1, job.settings.takes + 1):
                wav = Path(scratch) / f"take{i}_{take}.wav"
                wav.write_bytes(b"")
                placements.append(Placement(
                    record_range=s.record_range, wav=wav, take=take,
                    head_handle=RT(0, s.record_range.duration.rate),
                    file_duration=s.record_range.duration, metadata={}))
        try:
            written = deliver_timeline(job, placements, Path(scratch), (1920, 1080))
        except TimelineError as err:
            raise TimelineError(f"{err} (checked before generating; nothing was written)") from None
        # a writer that succeeds can still produce a file no reader takes back (OTIO's FCP7
        # writer from an FCPXML source leaves out a <start>): read it, as the editor's NLE will
        if written.suffix.lower() != ".mlt":  # MLT is checked by melt in the tests, not read here
            try:
                read_timeline(written, sequence=str(job.sequence_index + 1))
            except TimelineError as err:
                reason = str(err).split(": ", 1)[-1]
                raise TimelineError(f"the {written.suffix} version of this timeline cannot be "
                                    f"read back ({reason}); choose another --format (checked "
                                    f"before generating; nothing was written)") from None


def _media_origin(segment: Segment, info) -> otio.opentime.RationalTime:
    """The source time of the media's first frame: its available range's start, or, for a clip
    that names none (an EDL event, counted in source timecode), the file's own timecode track."""
    rate = segment.source_range.start_time.rate
    if segment.media_start is not None:
        return segment.media_start
    if info.timecode:
        return otio.opentime.from_timecode(info.timecode, rate)
    return RT(0, rate)


def _file_frames(path: Path, frame_rate: Fraction, sample_rate: int) -> int:
    import wave
    with wave.open(str(path)) as fh:
        samples = fh.getnframes()
    return round(Fraction(samples, sample_rate) * frame_rate)


__all__ = ["FoleyPlan", "FoleySettings", "discard", "make_foley", "plan_foley", "relink"]
