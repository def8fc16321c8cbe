"""Reading editors' timelines through OpenTimelineIO, and writing new versions beside them.

Adapters by extension (NLE.md): .otio/.otioz/.otiod native, FCP7 XML (`fcp_xml`, Premiere and
Resolve), FCPXML (`fcpx_xml`, otio-fcpx-xml-adapter), CMX 3600 EDL (`cmx_3600`, which carries
no rate: the caller passes one), AAF. New versions can also be written as MLT XML (Shotcut,
Kdenlive; our own writer, `mlt.py`). A file holding several sequences
reads as a collection: the caller picks one by name or number. The source is only ever read.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import opentimelineio as otio

from engine.atomic import atomic_target
from engine.naming import next_version_path
from mfmjt_plugin.timeline.mlt import to_mlt_xml
from mfmjt_plugin.timeline.segments import TimelineError

ADAPTERS = {".otio": "otio_json", ".otioz": "otioz", ".otiod": "otiod", ".xml": "fcp_xml",
            ".fcpxml": "fcpx_xml", ".edl": "cmx_3600", ".aaf": "AAF"}
FORMATS = {"otio": ".otio", "xml": ".xml", "fcpxml": ".fcpxml", "aaf": ".aaf", "edl": ".edl",
           "mlt": ".mlt"}


def _adapter_for(path: Path) -> str:
    adapter = ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        raise TimelineError(f"{path}: unsupported timeline format {path.suffix!r}; use one of "
                            f"{', '.join(sorted(ADAPTERS))}")
    if adapter not in otio.adapters.available_adapter_names():
        raise TimelineError(f"{path}: reading {path.suffix} needs the {adapter!r} OTIO adapter, "
                            f"which is not installed")
    return adapter


def sequences(result) -> list[otio.schema.Timeline]:
    if isinstance(result, otio.schema.Timeline):
        return [result]
    return [t for t in result.find_children(descended_from_type=otio.schema.Timeline)] \
        if hasattr(result, "find_children") else []


def read_timeline(path: Path | str, *, rate: Optional[float] = None,
                  sequence: Optional[str] = None) -> otio.schema.Timeline:
    """One timeline from `path`; `sequence` (name or 1-based number) picks among several."""
    path = Path(path)
    found = read_sequences(path, rate=rate)
    if sequence is None:
        if len(found) > 1:
            names = "; ".join(f"{i}: {t.name}" for i, t in enumerate(found, 1))
            raise TimelineError(f"{path}: holds {len(found)} sequences ({names}); pick one with "
                                f"--sequence NAME|NUMBER")
        return found[0]
    for index, timeline in enumerate(found, 1):
        if sequence in (timeline.name, str(index)):
            return timeline
    raise TimelineError(f"{path}: no sequence {sequence!r}; it holds "
                        f"{', '.join(repr(t.name) for t in found)}")


def read_sequences(path: Path | str, *, rate: Optional[float] = None) -> list[otio.schema.Timeline]:
    """Every sequence (timeline) `path` holds, in the file's order; at least one."""
    path = Path(path)
    if not (path.is_file() or (path.suffix.lower() == ".otiod" and path.is_dir())):
        raise TimelineError(f"{path}: timeline file not found")
    adapter = _adapter_for(path)
    kwargs = {}
    if adapter == "cmx_3600":
        if rate is None:
            raise TimelineError(f"{path}: an EDL carries no frame rate; pass --rate (e.g. "
                                f"23.976, 25, 29.97)", field="rate")
        kwargs["rate"] = rate
    try:
        result = otio.adapters.read_from_file(str(path), adapter_name=adapter, **kwargs)
    except otio.exceptions.OTIOError as err:
        if adapter == "otio_json" and "unsupported schema version" in str(err):
            from mfmjt_plugin.timeline.otio_schemas import read_newer_otio
            result = read_newer_otio(path)
        elif adapter == "cmx_3600":  # timecode mismatches are common in real EDLs (NLE.md)
            try:
                result = otio.adapters.read_from_file(str(path), adapter_name=adapter,
                                                      ignore_timecode_mismatch=True, **kwargs)
            except Exception as again:
                raise TimelineError(f"{path}: unreadable EDL ({again})") from None
        else:
            raise TimelineError(f"{path}: unreadable timeline ({err})") from None
    except Exception as err:  # adapters raise many types on malformed files
        raise TimelineError(f"{path}: unreadable timeline ({type(err).__name__}: {err})") from None
    if adapter in ("otioz", "otiod"):
        _anchor_bundle_media(result, _bundle_folder(path, adapter))
    if adapter == "fcp_xml":
        _apply_fcp7_enabled(result)
    if adapter == "cmx_3600":
        for timeline in sequences(result):
            _normalise_edl(timeline)
    found = sequences(result)
    if not found:
        raise TimelineError(f"{path}: holds no sequence")
    return found


def _apply_fcp7_enabled(result) -> None:
    """OTIO's FCP7 reader keeps `<enabled>FALSE</enabled>` only as metadata and leaves the item
    enabled, so a switched-off clip or track would still be seen (and get Foley)."""
    for item in result.find_children() if hasattr(result, "find_children") else []:
        if isinstance(item, (otio.core.Item, otio.schema.Track)) and \
                str(item.metadata.get("fcp_xml", {}).get("enabled", "")).upper() == "FALSE":
            item.enabled = False


def _normalise_edl(timeline: otio.schema.Timeline) -> None:
    """OTIO's CMX 3600 reader keeps the first event's record timecode as a negative start of each
    track's source range, which OTIO itself reads as "show the time before the first clip": every
    clip falls outside its own track. Move that timecode to the timeline's start (where every
    other format keeps it), and the LOC markers, which it hangs on clips at absolute record
    timecodes, onto the timeline at their record times."""
    offsets = [-t.source_range.start_time for t in timeline.tracks
               if t.source_range is not None and t.source_range.start_time.value < 0]
    if not offsets or timeline.global_start_time is not None:
        return
    start = min(offsets, key=lambda r: r.to_seconds())
    for track in timeline.tracks:
        if track.source_range is None:
            continue
        lead = -track.source_range.start_time - start  # a later first event: a gap before it
        track.source_range = None
        if lead.value > 0:
            track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, lead.rate), lead)))
    timeline.global_start_time = start
    colours = {c.upper(): c for c in dir(otio.schema.MarkerColor) if not c.startswith("_")}
    for clip in timeline.find_clips():
        for marker in list(clip.markers):
            at = marker.marked_range.start_time
            record = otio.opentime.RationalTime(at.value, start.rate) - start
            colour = str(marker.metadata.get("cmx_3600", {}).get("color", "")).upper()
            placed = otio.schema.Marker(
                name=marker.name, metadata=copy.deepcopy(dict(marker.metadata)),
                marked_range=otio.opentime.TimeRange(record, otio.opentime.RationalTime(0, start.rate)),
                color=getattr(otio.schema.MarkerColor, colours.get(colour, "RED")))
            timeline.tracks.markers.append(placed)
            clip.markers.remove(marker)


def _bundle_folder(path: Path, adapter: str) -> Path:
    """Where a bundle's relative media paths start: the .otiod folder itself, or, for an .otioz
    (a zip), a copy unpacked once into our cache, keyed by the zip's identity."""
    if adapter == "otiod":
        return path
    import hashlib
    import json
    import zipfile

    from engine.features.cache import media_identity
    from engine.paths import cache_dir
    # keyed like the feature cache (path, size, mtime, first and last MiB): a bundle can hold
    # gigabytes of media, which hashing whole would read on every open
    digest = hashlib.sha256(json.dumps(media_identity(path), sort_keys=True).encode()) \
        .hexdigest()[:16]
    folder = cache_dir() / "otioz" / f"{path.stem}-{digest}"
    if not folder.is_dir():
        staging = folder.with_name(folder.name + ".partial")
        staging.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path) as bundle:
            bundle.extractall(staging)
        staging.rename(folder)
    return folder


def _anchor_bundle_media(result, folder: Path) -> None:
    """Bundles name their media relative to themselves ("media/shot.mov"); make those paths
    absolute so the media can be decoded and the result points at real files."""
    from urllib.parse import urlparse
    for clip in result.find_clips() if hasattr(result, "find_clips") else []:
        ref = clip.media_reference
        url = getattr(ref, "target_url", "")
        if isinstance(ref, otio.schema.ExternalReference) and url and not urlparse(url).scheme \
                and not Path(url).is_absolute():
            ref.target_url = (folder / url).resolve().as_uri()


def write_new_version(timeline: otio.schema.Timeline, source: Path | str, *,
                      fmt: Optional[str] = None, suffix: str = "_foley",
                      folder: Optional[Path] = None, picture_size: tuple[int, int] = (1920, 1080)) -> Path:
    """Write `timeline` as `<source stem><suffix>_vNNN<ext>` beside the source (a new version
    every time, atomically; the source is never touched). `fmt`: otio | xml | fcpxml | aaf | edl
    | mlt (default: the source's own format, but OTIO for an EDL source: OTIO's CMX 3600 writer
    keeps one video track and drops the audio tracks, so the Foley would vanish); `folder`
    replaces the source's folder; `picture_size` goes into an MLT profile."""
    source = Path(source)
    ext = FORMATS[fmt] if fmt else source.suffix.lower()
    if fmt is None and ext == ".edl":
        ext = ".otio"
    adapter = "mlt" if ext == ".mlt" else ADAPTERS[ext]
    if adapter != "mlt" and adapter not in otio.adapters.available_adapter_names():
        raise TimelineError(f"writing {ext} needs the {adapter!r} OTIO adapter, which is not "
                            f"installed; choose another --format")
    target = next_version_path(Path(folder) if folder else source.parent,
                               f"{source.stem}{suffix}", ext)
    kwargs = {"use_empty_mob_ids": True} if adapter == "AAF" else {}
    timeline = explicit_source_ranges(timeline)
    try:
        if adapter == "otiod":
            _write_directory_bundle(timeline, target)
            return target
        with atomic_target(target, suffix=ext) as tmp:
            if adapter == "mlt":
                Path(tmp).write_text(to_mlt_xml(timeline, width=picture_size[0],
                                                height=picture_size[1]), encoding="utf-8")
            else:
                if adapter == "otioz":  # the bundle writer refuses an existing file
                    Path(tmp).unlink()
                otio.adapters.write_to_file(timeline, str(tmp), adapter_name=adapter, **kwargs)
    except TimelineError:
        raise
    except PermissionError:
        raise TimelineError(f"{target.parent}: cannot write there; choose another output "
                            f"folder") from None
    except Exception as err:  # an adapter that cannot express this timeline: nothing is left
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise TimelineError(f"{target.name}: the {adapter!r} writer failed "
                            f"({type(err).__name__}: {reason}); try another --format") from None
    return target


def explicit_source_ranges(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy whose clips all state their source range. OTIO allows a clip without one (it plays
    its media's whole available range), but the FCP7 writer dereferences it and crashes."""
    result = timeline.deepcopy()
    for clip in result.find_clips():
        if clip.source_range is None:
            try:
                clip.source_range = clip.trimmed_range()
            except otio.exceptions.OTIOError:
                pass  # no available range either: the writer will name the clip
    return result


def write_text_version(text: str, source: Path | str, *, suffix: str = "_foley",
                       folder: Optional[Path] = None) -> Path:
    """A document we produced ourselves (the source patched), written as the next version in the
    source's own format, atomically."""
    source = Path(source)
    target = next_version_path(Path(folder) if folder else source.parent,
                               f"{source.stem}{suffix}", source.suffix.lower())
    try:
        with atomic_target(target, suffix=source.suffix.lower()) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    except PermissionError:
        raise TimelineError(f"{target.parent}: cannot write there; choose another output "
                            f"folder") from None
    return target


def _write_directory_bundle(timeline: otio.schema.Timeline, target: Path) -> None:
    """An .otiod is a folder: written under a hidden name, then renamed into place (atomic; a
    failed write leaves nothing)."""
    import shutil
    import tempfile
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    bundle = staging / target.name
    try:
        otio.adapters.write_to_file(timeline, str(bundle), adapter_name="otiod")
        bundle.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
