"""FCPXML delivery is the editor's document plus our assets, connected clips and markers, compared
element by element with the original (not re-read through OpenTimelineIO's FCPXML adapter)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import opentimelineio as otio

from mfmjt_plugin.cli import main
from mfmjt_plugin.timeline import fcpxml_patch
from mfmjt_plugin.timeline.insert import Placement
from tests.media_factory import SAMPLE_TIMELINES
from tests.test_pipeline import bundle  # noqa: F401  (the small random-weight bundle fixture)

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
SAMPLE = SAMPLE_TIMELINES / "fcpx_example.fcpxml"


def canonical(element: ET.Element) -> str:
    return ET.canonicalize(ET.tostring(element, encoding="unicode"), strip_text=True)


def placements(takes: int = 2) -> list[Placement]:
    regions = [(30, 60), (650, 90), (2450, 30)]  # inside a clip, a gap holding connected clips, later
    return [Placement(record_range=TR(RT(start, 30), RT(length, 30)),
                      wav=Path(f"/takes/f{i}_t{take:02d}.wav"), take=take, head_handle=RT(15, 30),
                      file_duration=RT(length + 45, 30), metadata={"seed": i})
            for i, (start, length) in enumerate(regions) for take in range(1, takes + 1)]


def test_every_original_element_is_kept_in_every_project():
    prolog, original = fcpxml_patch.read_document(SAMPLE)
    names = [p.get("name") for p in fcpxml_patch.projects(original)]
    assert names == ["OpenTimeline_Project", "OpenTimeline_Project 1"]
    for index, name in enumerate(names):
        _, root = fcpxml_patch.read_document(SAMPLE)
        fcpxml_patch.add_foley(root, fcpxml_patch.find_project(root, name, index), placements())
        text = fcpxml_patch.serialise(prolog, root)
        assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n')
        again = ET.fromstring(text[len(prolog):])
        assert canonical(fcpxml_patch.without_ours(again)) == canonical(original), name
        ours = [e for e in again.iter() if fcpxml_patch.is_ours(e)]
        assert [e.tag for e in ours].count("asset") == 6
        assert [e.tag for e in ours].count("asset-clip") == 6
        assert [e.tag for e in ours].count("marker") == 3


def test_takes_are_connected_at_their_record_times_with_alternates_disabled(tmp_path):
    prolog, root = fcpxml_patch.read_document(SAMPLE)
    project = fcpxml_patch.find_project(root, "OpenTimeline_Project", 0)
    fcpxml_patch.add_foley(root, project, placements(), prompt="steps")
    clips = [e for e in project.iter("asset-clip") if fcpxml_patch.is_ours(e)]
    assert sorted({c.get("lane") for c in clips}) == ["-2", "-3"]  # below the lowest lane (-1)
    assert [c.get("enabled") for c in clips if c.get("lane") == "-3"] == ["0", "0", "0"]
    assert all(c.get("enabled") is None for c in clips if c.get("lane") == "-2")
    # the second region lies in a gap whose local time starts at 3600 s: 650 frames = 21 2/3 s,
    # 1 2/3 s into the gap at offset 20 s
    second = next(c for c in clips if c.get("name") == "f1_t01")
    assert (second.get("offset"), second.get("start"), second.get("duration")) == \
        ("10805/3s", "1/2s", "3s")
    assert json.loads(second.find("note").text) == {"mfmjt": {"seed": 1, "take": 1}}
    # its marker stays inside the 10 s gap that hosts it (3600 s to 3610 s local): 3 s fit
    host = next(e for e in project.iter() if second in list(e))
    (marker,) = [m for m in host.findall("marker") if fcpxml_patch.is_ours(m)]
    assert (marker.get("start"), marker.get("duration")) == ("10805/3s", "3s")
    late = Placement(record_range=TR(RT(590, 30), RT(60, 30)), wav=Path("/t/late.wav"), take=1,
                     head_handle=RT(0, 30), file_duration=RT(60, 30))
    _, again = fcpxml_patch.read_document(SAMPLE)
    fcpxml_patch.add_foley(again, fcpxml_patch.find_project(again, "OpenTimeline_Project", 0), [late])
    (cut,) = [m for m in again.iter("marker") if fcpxml_patch.is_ours(m)]
    # 19 2/3 s: 9 2/3 s into the gap at 10 s (local time from 3600 s), 1/3 s before its end
    assert (cut.get("start"), cut.get("duration")) == ("10829/3s", "1/3s")
    written = tmp_path / "foley.fcpxml"
    written.write_text(fcpxml_patch.serialise(prolog, root))
    back = otio.adapters.read_from_file(str(written))
    timeline = next(iter(back.find_children(descended_from_type=otio.schema.Timeline)))
    found = sorted((c.name, c.transformed_time_range(c.trimmed_range(), timeline.tracks).start_time.value,
                    c.source_range.start_time.value) for c in timeline.find_clips() if c.name.startswith("f"))
    assert found == [("f0_t01", 30, 15), ("f0_t02", 30, 15), ("f1_t01", 650, 15), ("f1_t02", 650, 15),
                     ("f2_t01", 2450, 15), ("f2_t02", 2450, 15)]


def test_a_final_cut_project_gets_its_own_document_back_plus_foley(tmp_path, bundle):  # noqa: F811
    from tests.media_factory import sample_with_stand_ins
    source, stand_ins = sample_with_stand_ins(tmp_path, "fcpx_example.fcpxml",
                                              {"IMG_0715.MOV": 330}, folder="media")
    assert main(["timeline", "foley", str(source), "--sequence", "1", "--in", "00:00:01:00",
                 "--out", "00:00:03:00", "--prompt", "snow", "--takes", "2", "--search",
                 str(stand_ins), "--bundle", str(bundle), "--json"]) == 0
    written = tmp_path / "fcpx_example_foley_v001.fcpxml"
    _, original = fcpxml_patch.read_document(source)
    _, result = fcpxml_patch.read_document(written)
    # the relinked asset now points at the file found under --search; nothing else changed
    (relinked,) = [a for a in result.iter("asset") if a.get("name") == "IMG_0715"]
    assert relinked.get("src") == (stand_ins / "IMG_0715.MOV").resolve().as_uri()
    relinked.set("src", "file:///Volumes/Media/otio/IMG_0715.MOV")
    assert canonical(fcpxml_patch.without_ours(result)) == canonical(original)
    clips = [e for e in result.iter("asset-clip") if fcpxml_patch.is_ours(e)]
    assert [(c.get("offset"), c.get("duration"), c.get("enabled")) for c in clips] == [
        ("1s", "2s", None), ("1s", "2s", "0")]
    (marker,) = [e for e in result.iter("marker") if fcpxml_patch.is_ours(e)]
    assert (marker.get("start"), marker.get("duration"), marker.get("value")) == ("1s", "2s", "FOLEY: snow")


def test_a_project_starting_at_01_00_00_00_places_takes_in_its_own_time(tmp_path):
    """OpenTimelineIO keeps a project's spine offsets as written (tcStart included), so record
    time is spine time: adding tcStart again put takes an hour late, or refused them."""
    prolog, root = fcpxml_patch.read_document(SAMPLE)
    project = fcpxml_patch.find_project(root, "OpenTimeline_Project", 0)
    sequence = project.find("sequence")
    sequence.set("tcStart", "3600s")
    for element in sequence.find("spine"):
        if element.get("offset"):
            shifted = fcpxml_patch.parse_time(element.get("offset")) + 3600
            element.set("offset", fcpxml_patch.format_time(shifted))
    shifted_doc = tmp_path / "hour.fcpxml"
    shifted_doc.write_text(fcpxml_patch.serialise(prolog, root))
    timeline = next(iter(otio.adapters.read_from_file(str(shifted_doc))
                         .find_children(descended_from_type=otio.schema.Timeline)))
    first = timeline.tracks[1].find_clips()[0]
    assert (first.name, first.range_in_parent().start_time.to_seconds()) == ("IMG_0715", 3600.0)
    one_second_in = Placement(record_range=TR(RT(3601 * 30, 30), RT(30, 30)), wav=Path("/t/a.wav"),
                              take=1, head_handle=RT(0, 30), file_duration=RT(60, 30))
    _, root = fcpxml_patch.read_document(shifted_doc)
    fcpxml_patch.add_foley(root, fcpxml_patch.find_project(root, "OpenTimeline_Project", 0),
                           [one_second_in])
    (clip,) = [e for e in root.iter("asset-clip") if fcpxml_patch.is_ours(e)]
    host = next(e for e in root.iter() if clip in list(e))
    assert (host.get("name"), clip.get("offset")) == ("IMG_0715", "1s")


def test_a_version_no_reader_takes_back_is_refused_before_generating(tmp_path, bundle, capsys):  # noqa: F811
    """OpenTimelineIO's FCP7 writer, fed this FCPXML project, writes a file its own reader
    refuses: the preflight reads the result back, as the editor's NLE would."""
    from tests.media_factory import sample_with_stand_ins
    source, stand_ins = sample_with_stand_ins(tmp_path, "fcpx_example.fcpxml",
                                              {"IMG_0715.MOV": 330}, folder="media")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["timeline", "foley", str(source), "--sequence", "1", "--clip", "IMG_0715",
                 "--format", "xml", "--search", str(stand_ins), "--bundle", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the .xml version of this timeline cannot be read back (")
    assert err.endswith("choose another --format (checked before generating; nothing was written)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
