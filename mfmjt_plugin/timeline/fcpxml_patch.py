"""Foley into a Final Cut Pro X document (FCPXML) as the editor wrote it: their document plus ours.

OpenTimelineIO's FCPXML writer rebuilds the document from its own model and fails on real
projects (compound clips, connected storylines); even where it works it drops what it does not
model. So the new version is the original tree with, for each take, an asset in `<resources>`
and an audio-only `<asset-clip>` connected below the primary storyline element it plays under
(FCPXML has no tracks: each take gets its own lane, the chosen take enabled, alternates
disabled), and a marker over each generated region; every other element stays as it was.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

from mfmjt_plugin.timeline import xml_document
from mfmjt_plugin.timeline.insert import METADATA_KEY, Placement
from mfmjt_plugin.timeline.segments import TimelineError
from mfmjt_plugin.timeline.xml_document import (depth_of, indent_unit, insert_formatted,
                                                serialise, unique_ids)

# Final Cut validates imports against its DTD, so nothing of ours carries an attribute it does not
# know: our assets are told apart by their id, our clips by the asset they use, our markers by
# the metadata in their note.
ASSET_PREFIX = "mfmjt-r"

# FCPXML's DTD orders an element's children: anchored clips before markers, markers before
# ratings, keywords, channel sources, filters and metadata.
AFTER_ANCHORS = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker",
                 "audio-channel-source", "audio-role-source", "sync-source", "filter-video",
                 "filter-video-mask", "filter-audio", "metadata"}
AFTER_MARKERS = AFTER_ANCHORS - {"marker", "chapter-marker"}
STORY_ELEMENTS = {"clip", "asset-clip", "gap", "ref-clip", "sync-clip", "mc-clip", "audio",
                  "video", "title"}
FOLEY_ROLE = "effects"  # Final Cut's standard role for sound effects


def read_document(path: Path) -> tuple[str, ET.Element]:
    return xml_document.read_document(path, "fcpxml", "FCPXML")


def parse_time(text: str | None) -> Fraction:
    """FCPXML rational seconds: "10s", "100/3000s", "0s"."""
    if not text:
        return Fraction(0)
    match = re.fullmatch(r"(-?\d+)(?:/(\d+))?s", text.strip())
    if match is None:
        raise TimelineError(f"FCPXML time {text!r} is not N/Ds")
    return Fraction(int(match.group(1)), int(match.group(2) or 1))


def format_time(value: Fraction) -> str:
    value = Fraction(value)
    return f"{value.numerator}s" if value.denominator == 1 else \
        f"{value.numerator}/{value.denominator}s"


def projects(root: ET.Element) -> list[ET.Element]:
    """Every <project> in document order (what OpenTimelineIO reads as timelines)."""
    return list(root.iter("project"))


def find_project(root: ET.Element, name: str, index: int) -> ET.Element:
    found = projects(root)
    if index < len(found) and found[index].get("name") == name:
        return found[index]
    named = [p for p in found if p.get("name") == name]
    if len(named) == 1:
        return named[0]
    raise TimelineError(f"project {name!r} not found in the FCPXML document")


def _seconds(time) -> Fraction:
    """An OTIO RationalTime in exact seconds (NTSC rates as 30000/1001 and friends)."""
    rate = Fraction(time.rate).limit_denominator(1001)
    return Fraction(time.value).limit_denominator(10 ** 6) / rate


def _host(spine: ET.Element, at: Fraction) -> ET.Element:
    """The primary-storyline element playing at spine time `at` (not a transition)."""
    for element in spine:
        if element.tag not in STORY_ELEMENTS:
            continue
        offset = parse_time(element.get("offset"))
        if offset <= at < offset + parse_time(element.get("duration")):
            return element
    raise TimelineError(f"no primary-storyline clip at {float(at):.3f} s to connect the Foley to")


def _insert_before_first(parent: ET.Element, child: ET.Element, later: set[str], depth: int,
                         unit: str) -> None:
    index = next((i for i, e in enumerate(parent) if e.tag in later), len(parent))
    insert_formatted(parent, child, index, depth, unit)


def add_foley(root: ET.Element, project: ET.Element, placements: list[Placement], *,
              prompt: str = "") -> None:
    """Add assets, connected audio clips and markers for `placements` to `project` (in place)."""
    if not placements:
        return
    sequence = project.find("sequence")
    spine = sequence.find("spine") if sequence is not None else None
    resources = root.find("resources")
    if spine is None or resources is None:
        raise TimelineError(f"project {project.get('name')!r} has no sequence spine or resources")
    unit = indent_unit(root)
    lanes = [int(e.get("lane")) for e in root.iter() if e.get("lane", "").lstrip("-").isdigit()]
    lowest = min([0] + lanes)
    asset_ids = unique_ids(root, ASSET_PREFIX)
    modern = tuple(int(p) for p in root.get("version", "1.8").split(".")[:2]) >= (1, 9)
    for placement in sorted(placements, key=lambda p: (p.take, _seconds(p.record_range.start_time))):
        # OpenTimelineIO keeps the spine's offsets as written, tcStart included: stack time is
        # spine time
        at = _seconds(placement.record_range.start_time)
        body = _seconds(placement.record_range.duration)
        head = _seconds(placement.head_handle)
        asset = ET.Element("asset", {"id": next(asset_ids), "name": placement.wav.stem,
                                     "start": "0s", "duration": format_time(_seconds(placement.file_duration)),
                                     "hasAudio": "1", "audioSources": "1", "audioChannels": "1",
                                     "audioRate": "48000"})
        source = placement.wav.resolve().as_uri()
        if modern:  # 1.9 and later name the file in a media-rep
            ET.SubElement(asset, "media-rep", {"kind": "original-media", "src": source})
        else:
            asset.set("src", source)
        insert_formatted(resources, asset, len(resources), depth_of(root, resources) + 1, unit)
        host = _host(spine, at)
        local = parse_time(host.get("start")) + (at - parse_time(host.get("offset")))
        clip = ET.Element("asset-clip", {
            "name": placement.wav.stem, "lane": str(lowest - placement.take), "offset": format_time(local),
            "ref": asset.get("id"), "duration": format_time(body), "start": format_time(head),
            "audioRole": FOLEY_ROLE})
        if placement.take != 1:
            clip.set("enabled", "0")
        ET.SubElement(clip, "note").text = json.dumps(
            {METADATA_KEY: dict(placement.metadata, take=placement.take)}, sort_keys=True)
        host_depth = depth_of(root, host) + 1
        _insert_before_first(host, clip, AFTER_ANCHORS, host_depth, unit)
        if placement.take == 1:
            # a marker lives inside its clip: it stops where the host does (the connected clip
            # may play on past it, as connected clips do)
            host_end = parse_time(host.get("start")) + parse_time(host.get("duration"))
            marker = ET.Element("marker", {
                "start": format_time(local), "duration": format_time(min(body, host_end - local)),
                "value": f"FOLEY: {prompt}" if prompt else "FOLEY",
                "note": json.dumps({METADATA_KEY: placement.metadata}, sort_keys=True)})
            _insert_before_first(host, marker, AFTER_MARKERS, host_depth, unit)


def relink(root: ET.Element, files: dict) -> int:
    """Point every asset (its `src`, or its media-rep's from 1.9 on) whose media was relinked at
    the file found; the one change made to the editor's own elements."""
    changed = 0
    for element in list(root.iter("asset")) + list(root.iter("media-rep")):
        url = xml_document.relinked_url(element.get("src") or "", files)
        if url is not None:
            element.set("src", url)
            changed += 1
    return changed


def patched_document(source: Path, project_name: str, project_index: int,
                     placements: list[Placement], *, prompt: str = "",
                     files: dict | None = None) -> str:
    prolog, root = read_document(source)
    add_foley(root, find_project(root, project_name, project_index), placements, prompt=prompt)
    relink(root, files or {})
    return serialise(prolog, root)


def is_ours(element: ET.Element) -> bool:
    if element.tag == "asset":
        return element.get("id", "").startswith(ASSET_PREFIX)
    if element.tag == "asset-clip":
        return element.get("ref", "").startswith(ASSET_PREFIX)
    if element.tag == "marker":
        return f'"{METADATA_KEY}"' in (element.get("note") or "")
    return False


def without_ours(root: ET.Element) -> ET.Element:
    """A copy of `root` with every element we add removed (tests compare it with the source)."""
    return xml_document.without_ours(root, is_ours)
