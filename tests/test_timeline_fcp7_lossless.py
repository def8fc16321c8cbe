"""FCP7 XML delivery is the editor's document plus our tracks: compared element by element with
the original document (never re-read through OpenTimelineIO's lossy FCP7 adapter)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import opentimelineio as otio

from mfmjt_plugin.cli import main
from mfmjt_plugin.timeline import fcp7_patch
from mfmjt_plugin.timeline.insert import TRACK_NAME, Placement
from mfmjt_plugin.timeline.io import explicit_source_ranges
from tests.media_factory import SAMPLE_TIMELINES
from tests.test_pipeline import bundle  # noqa: F401  (the small random-weight bundle fixture)

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
SHARED = SAMPLE_TIMELINES


def canonical(element: ET.Element) -> str:
    # whitespace between elements is layout, not content
    return ET.canonicalize(ET.tostring(element, encoding="unicode"), strip_text=True)


def documents(tmp_path: Path) -> list[Path]:
    """The Premiere export in shared/, and FCP7 XML written by OTIO from the other samples."""
    found = [SHARED / "premiere_example.xml"]
    for name in ("simple_cut.otio", "multitrack.otio", "transition.otio"):
        target = tmp_path / name.replace(".otio", ".xml")
        timeline = explicit_source_ranges(otio.adapters.read_from_file(str(SHARED / name)))
        otio.adapters.write_to_file(timeline, str(target), adapter_name="fcp_xml")
        found.append(target)
    return found


def placements(rate: float, takes: int) -> list[Placement]:
    regions = [(0, 12), (40, 30), (200, 7)]
    return [Placement(record_range=TR(RT(start, rate), RT(length, rate)),
                      wav=Path(f"/takes/foley_r{i}_t{take:02d}.wav"), take=take,
                      head_handle=RT(min(start, 30), rate),
                      file_duration=RT(length + min(start, 30) + 30, rate),
                      metadata={"prompt": "steps", "seed": i})
            for i, (start, length) in enumerate(regions) for take in range(1, takes + 1)]


def test_every_original_element_is_kept_for_every_sample_and_sequence(tmp_path):
    checked = 0
    for path in documents(tmp_path):
        prolog, original = fcp7_patch.read_document(path)
        for index, sequence in enumerate(fcp7_patch.top_sequences(original)):
            _, root = fcp7_patch.read_document(path)
            target = fcp7_patch.top_sequences(root)[index]
            rate = float(target.findtext("rate/timebase"))
            fcp7_patch.add_foley(root, target, placements(rate, takes=2), prompt="steps")
            text = fcp7_patch.serialise(prolog, root)
            assert text.startswith(prolog)
            again = ET.fromstring(text[len(prolog):],
                                  parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
            assert canonical(fcp7_patch.without_ours(again)) == canonical(original), path.name
            added = [e for e in again.iter() if e.get(fcp7_patch.OURS)]
            assert [(e.tag, e.get("MZ.TrackName")) for e in added if e.tag == "track"] == [
                ("track", TRACK_NAME), ("track", f"{TRACK_NAME} alt 2")]
            assert len([e for e in added if e.tag == "marker"]) == 3
            checked += 1
    assert checked == 4


def test_the_added_tracks_read_back_at_their_frames_with_alternates_disabled(tmp_path):
    path = tmp_path / "cut.xml"
    otio.adapters.write_to_file(explicit_source_ranges(otio.adapters.read_from_file(
        str(SHARED / "simple_cut.otio"))), str(path), adapter_name="fcp_xml")
    prolog, root = fcp7_patch.read_document(path)
    (sequence,) = fcp7_patch.top_sequences(root)
    rate = float(sequence.findtext("rate/timebase"))
    fcp7_patch.add_foley(root, sequence, placements(rate, takes=2), prompt="steps")
    tracks = [t for t in root.iter("track") if t.get(fcp7_patch.OURS)]
    assert [t.findtext("enabled") for t in tracks] == ["TRUE", "FALSE"]
    assert {c.findtext("enabled") for c in tracks[1].iter("clipitem")} == {"FALSE"}
    first = tracks[0].find("clipitem")
    assert [first.findtext(k) for k in ("start", "end", "in", "out", "duration")] == \
        ["0", "12", "0", "12", "42"]
    assert first.findtext("file/pathurl") == "file:///takes/foley_r0_t01.wav"
    assert json.loads(first.findtext("comments/mastercomment1"))["mfmjt"] == \
        {"prompt": "steps", "seed": 0, "take": 1}
    written = tmp_path / "cut_foley.xml"
    written.write_text(fcp7_patch.serialise(prolog, root))
    back = otio.adapters.read_from_file(str(written))
    audio = [t for t in back.tracks if t.kind == otio.schema.TrackKind.Audio]
    chosen, alternate = audio[-2:]
    assert [(c.name, c.range_in_parent().start_time.value, c.source_range.start_time.value)
            for c in chosen.find_clips()] == [("foley_r0_t01", 0, 0), ("foley_r1_t01", 40, 30),
                                              ("foley_r2_t01", 200, 30)]
    assert [c.name for c in alternate.find_clips()] == ["foley_r0_t02", "foley_r1_t02", "foley_r2_t02"]


def test_ids_we_add_never_collide_with_the_editors(tmp_path):
    _, root = fcp7_patch.read_document(SHARED / "premiere_example.xml")
    (sequence,) = fcp7_patch.top_sequences(root)
    sequence.set("id", "mfmjt-clipitem-1")  # an id we would pick first
    theirs = {e.get("id") for e in root.iter() if e.get("id")}
    fcp7_patch.add_foley(root, sequence, placements(30.0, takes=1))
    added = [t for t in root.iter("track") if t.get(fcp7_patch.OURS)]
    ours = [e.get("id") for t in added for e in t.iter() if e.get("id")]
    assert len(ours) == 6 and len(set(ours)) == 6 and not theirs & set(ours)
    assert "mfmjt-clipitem-1" not in ours


def test_a_premiere_export_gets_its_own_document_back_plus_foley(tmp_path, bundle):  # noqa: F811
    """The issue's case: --clip on the Premiere sample, two takes. Before, the adapter's round
    trip dropped 4 of 8 audio tracks and all 57 links and moved a clip from frame 1164 to 1177."""
    from tests.media_factory import sample_with_stand_ins
    source, stand_ins = sample_with_stand_ins(tmp_path, "premiere_example.xml",
                                              {"sc01_master_layerA_sh030_temp.mov": 300})
    assert main(["timeline", "foley", str(source), "--clip", "sc01_master_layerA_sh030_temp.mov",
                 "--prompt", "steps", "--takes", "2", "--search", str(stand_ins),
                 "--bundle", str(bundle)]) == 0
    written = tmp_path / "premiere_example_foley_v001.xml"
    original_text = source.read_text()
    text = written.read_text()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n<xmeml version="4">')
    _, original = fcp7_patch.read_document(source)
    _, result = fcp7_patch.read_document(written)
    # the one change to the editor's elements: the relinked file's path now points at the file
    # found under --search
    found = (stand_ins / "sc01_master_layerA_sh030_temp.mov").resolve().as_uri()
    changed = [(a.text, b.text) for a, b in zip(original.iter("pathurl"), result.iter("pathurl"))
               if a.text != b.text]
    assert changed and {new for _, new in changed} == {found}
    assert {old for old, _ in changed} == {"file://localhost/D%3a/media/sc01_master_layerA_sh030_temp.mov"}
    for element in result.iter("pathurl"):
        if element.text == found:
            element.text = "file://localhost/D%3a/media/sc01_master_layerA_sh030_temp.mov"
    assert canonical(fcp7_patch.without_ours(result)) == canonical(original)
    sequence, = fcp7_patch.top_sequences(result)
    audio_tracks = sequence.findall("media/audio/track")
    assert len(audio_tracks) == 8 + 2
    assert text.count("<link>") == original_text.count("<link>") == 57
    assert [c.findtext("start") for c in audio_tracks[6].findall("clipitem")][-1] == "1164"
    foley, alternate = audio_tracks[-2:]
    assert (foley.get("MZ.TrackName"), foley.findtext("enabled")) == (TRACK_NAME, "TRUE")
    assert (alternate.get("MZ.TrackName"), alternate.findtext("enabled")) == (f"{TRACK_NAME} alt 2", "FALSE")
    assert [c.findtext("enabled") for c in alternate.findall("clipitem")] == ["FALSE"]
    (clip,) = foley.findall("clipitem")
    assert (clip.findtext("start"), clip.findtext("end")) == ("956", "1164")
    markers = [m for m in sequence.findall("marker") if m.get(fcp7_patch.OURS)]
    assert [(m.findtext("name"), m.findtext("in"), m.findtext("out")) for m in markers] == [
        ("FOLEY: steps", "956", "1164")]
