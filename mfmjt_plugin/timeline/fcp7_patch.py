"""Foley into an FCP7 XML (xmeml) document as the editor wrote it: their document plus our tracks.

OpenTimelineIO's FCP7 adapter reads a Premiere export into its own model and writes that model
back: the second track of each stereo pair, every `<link>`, Premiere's attributes and elements it
does not model are lost, and clips move. So a new version of an FCP7 XML timeline is not written
through the adapter: the original tree is parsed, our audio tracks (one `<track>` per take, the
chosen one enabled, alternates disabled) and one `<marker>` per generated region are appended to
the chosen sequence, and everything else is serialised back as it was: element order, attributes,
text, comments, the XML declaration and DOCTYPE.
"""
from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from mfmjt_plugin.timeline import xml_document
from mfmjt_plugin.timeline.insert import METADATA_KEY, TRACK_NAME, Placement
from mfmjt_plugin.timeline.segments import TimelineError
from mfmjt_plugin.timeline.xml_document import OURS, depth_of, serialise, unique_ids, without_ours

__all__ = ["OURS", "add_foley", "find_sequence", "patched_document", "read_document", "relink",
           "serialise", "top_sequences", "without_ours"]

def read_document(path: Path) -> tuple[str, ET.Element]:
    """(the text before the root element: declaration, DOCTYPE, comments; the root element)."""
    return xml_document.read_document(path, "xmeml", "FCP7 XML")


def top_sequences(root: ET.Element) -> list[ET.Element]:
    """The sequences an editor can open, in document order: under <xmeml> or in project bins
    (not the nested sequences inside clip items)."""
    found: list[ET.Element] = []

    def walk(element: ET.Element) -> None:
        for child in element:
            if child.tag == "sequence":
                found.append(child)
            elif child.tag in ("project", "children", "bin"):
                walk(child)
    walk(root)
    return found


def find_sequence(root: ET.Element, name: str, index: int) -> ET.Element:
    """The sequence OpenTimelineIO read as timeline number `index` (0-based) named `name`."""
    candidates = top_sequences(root)
    if index < len(candidates) and (candidates[index].findtext("name") or "") == name:
        return candidates[index]
    named = [s for s in candidates if (s.findtext("name") or "") == name]
    if len(named) == 1:
        return named[0]
    raise TimelineError(f"sequence {name!r} not found in the FCP7 XML document")


def _frames(time, rate: float) -> int:
    return round(time.rescaled_to(rate).value)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _clipitem(track: ET.Element, placement: Placement, rate_element: ET.Element, rate: float,
              enabled: bool, clip_id: str, file_id: str) -> None:
    start = _frames(placement.record_range.start_time, rate)
    length = _frames(placement.record_range.duration, rate)
    head = _frames(placement.head_handle, rate)
    total = _frames(placement.file_duration, rate)
    flag = "TRUE" if enabled else "FALSE"
    item = _sub(track, "clipitem", id=clip_id)
    _sub(item, "name", placement.wav.stem)
    _sub(item, "enabled", flag)
    _sub(item, "duration", str(total))
    item.append(copy.deepcopy(rate_element))
    _sub(item, "start", str(start))
    _sub(item, "end", str(start + length))
    _sub(item, "in", str(head))
    _sub(item, "out", str(head + length))
    media_file = _sub(item, "file", id=file_id)
    _sub(media_file, "name", placement.wav.name)
    _sub(media_file, "pathurl", placement.wav.resolve().as_uri())
    media_file.append(copy.deepcopy(rate_element))
    _sub(media_file, "duration", str(total))
    audio = _sub(_sub(media_file, "media"), "audio")
    samples = _sub(audio, "samplecharacteristics")
    _sub(samples, "depth", "24")
    _sub(samples, "samplerate", "48000")
    _sub(audio, "channelcount", "1")
    source = _sub(item, "sourcetrack")
    _sub(source, "mediatype", "audio")
    _sub(source, "trackindex", "1")
    comments = _sub(item, "comments")
    _sub(comments, "mastercomment1", json.dumps(
        {METADATA_KEY: dict(placement.metadata, take=placement.take)}, sort_keys=True))


def _append_formatted(parent: ET.Element, child: ET.Element, depth: int) -> None:
    xml_document.insert_formatted(parent, child, len(parent), depth)


def add_foley(root: ET.Element, sequence: ET.Element, placements: list[Placement], *,
              prompt: str = "") -> None:
    """Append the Foley tracks and markers to `sequence` (in place)."""
    if not placements:
        return
    rate = placements[0].record_range.duration.rate
    rate_element = sequence.find("rate")
    if rate_element is None:
        raise TimelineError(f"sequence {sequence.findtext('name')!r} has no <rate>")
    media = sequence.find("media")
    if media is None:
        media = ET.Element("media")
        _append_formatted(sequence, media, depth_of(root, sequence) + 1)
    audio = media.find("audio")
    if audio is None:
        audio = ET.Element("audio")
        _append_formatted(media, audio, depth_of(root, media) + 1)
    clip_ids, file_ids = unique_ids(root, "mfmjt-clipitem"), unique_ids(root, "mfmjt-file")
    audio_depth = depth_of(root, audio)
    for take in sorted({p.take for p in placements}):
        enabled = take == 1
        name = TRACK_NAME if enabled else f"{TRACK_NAME} alt {take}"
        track = ET.Element("track", {"MZ.TrackName": name, OURS: "track"})
        for placement in sorted((p for p in placements if p.take == take),
                                key=lambda p: p.record_range.start_time.to_seconds()):
            _clipitem(track, placement, rate_element, rate, enabled, next(clip_ids), next(file_ids))
        _sub(track, "enabled", "TRUE" if enabled else "FALSE")
        _sub(track, "locked", "FALSE")
        _append_formatted(audio, track, audio_depth + 1)
    sequence_depth = depth_of(root, sequence)
    for placement in placements:
        if placement.take != 1:
            continue
        marker = ET.Element("marker", {OURS: "marker"})
        _sub(marker, "comment", json.dumps({METADATA_KEY: placement.metadata}, sort_keys=True))
        _sub(marker, "name", f"FOLEY: {prompt}" if prompt else "FOLEY")
        _sub(marker, "in", str(_frames(placement.record_range.start_time, rate)))
        _sub(marker, "out", str(_frames(placement.record_range.end_time_exclusive(), rate)))
        _append_formatted(sequence, marker, sequence_depth + 1)


def relink(root: ET.Element, files: dict) -> int:
    """Point every `<pathurl>` whose media was relinked (found under --search) at the file found,
    so the new version opens online; the one change made to the editor's own elements."""
    changed = 0
    for element in root.iter("pathurl"):
        url = xml_document.relinked_url(element.text or "", files)
        if url is not None:
            element.text = url
            changed += 1
    return changed


def patched_document(source: Path, sequence_name: str, sequence_index: int,
                     placements: list[Placement], *, prompt: str = "",
                     files: dict | None = None) -> str:
    """The source document's text with the Foley added to the chosen sequence (and relinked
    media pointing at the files found)."""
    prolog, root = read_document(source)
    add_foley(root, find_sequence(root, sequence_name, sequence_index), placements, prompt=prompt)
    relink(root, files or {})
    return serialise(prolog, root)
