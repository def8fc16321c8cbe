"""Timeline bridge, reading side: selections resolve to exact media segments (NLE.md)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import opentimelineio as otio
import pytest

from mfmjt_plugin.timeline.io import read_timeline, write_new_version
from mfmjt_plugin.timeline.segments import TimelineError, resolve_segments
from mfmjt_plugin.timeline.selection import Selection, exact_rate, selection_range, to_timecode

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "timelines"


def clip(name, start, duration, rate, media=None):
    ref = otio.schema.ExternalReference(target_url=media or f"/media/{name}.mov",
                                        available_range=TR(RT(0, rate), RT(10000, rate)))
    return otio.schema.Clip(name=name, media_reference=ref,
                            source_range=TR(RT(start, rate), RT(duration, rate)))


def build(rate: float, start_tc: str = "01:00:00:00"):
    """V1: A (trimmed), gap, nested stack holding B trimmed by the stack, C; V2 above: D over
    part of A. A transition between B's stack and C."""
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    v1.append(clip("A", 100, 48, rate))
    v1.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(12, rate))))
    nested = otio.schema.Stack(name="nest", source_range=TR(RT(10, rate), RT(30, rate)))
    inner = otio.schema.Track(name="inner", kind=otio.schema.TrackKind.Video)
    inner.append(clip("B", 500, 60, rate))
    nested.append(inner)
    v1.append(nested)
    v1.append(otio.schema.Transition(in_offset=RT(3, rate), out_offset=RT(3, rate)))
    v1.append(clip("C", 0, 24, rate))
    v2 = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Video)
    v2.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(20, rate))))
    v2.append(clip("D", 7, 10, rate))
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audio.append(clip("dialogue", 0, 114, rate))
    timeline = otio.schema.Timeline(name="cut", tracks=[v1, v2, audio],
                                    global_start_time=otio.opentime.from_timecode(start_tc, rate))
    return timeline


@pytest.mark.parametrize("rate", [24000 / 1001, 25.0, 30000 / 1001, 60000 / 1001])
def test_segments_map_record_to_source_exactly_through_nesting_and_layers(rate):
    timeline = build(rate)
    whole = selection_range(timeline, Selection())
    assert whole.duration.value == 48 + 12 + 30 + 24
    got = [(s.clip_name, s.record_range.start_time.value, s.record_range.duration.value,
            s.source_range.start_time.value) for s in resolve_segments(timeline, whole)]
    assert got == [("A", 0, 20, 100),        # A until D covers it
                   ("D", 20, 10, 7),         # V2 is on top
                   ("A", 30, 18, 130),       # A again, source advanced by the record offset
                   ("B", 60, 30, 510),       # B trimmed by the stack's source range (starts at 10)
                   ("C", 90, 24, 0)]         # the gap (48-60) shows nothing
    assert all(s.rate == rate for s in resolve_segments(timeline, whole))


def test_a_timecode_selection_cuts_segments_at_its_edges_in_drop_frame_too():
    rate = 30000 / 1001
    timeline = build(rate, start_tc="00:59:59;28")  # DF start: record TC = stack time + start
    start = timeline.global_start_time
    tc_in = to_timecode(timeline, RT(25, rate), drop_frame=True)
    tc_out = to_timecode(timeline, RT(70, rate), drop_frame=True)
    assert ";" in tc_in  # drop-frame timecodes are written and parsed with ';'
    chosen = selection_range(timeline, Selection(tc_in=tc_in, tc_out=tc_out))
    assert (chosen.start_time.value, chosen.duration.value) == (25, 45)
    parts = [(s.clip_name, s.record_range.start_time.value, s.record_range.duration.value,
              s.source_range.start_time.value) for s in resolve_segments(timeline, chosen)]
    assert parts == [("D", 25, 5, 12), ("A", 30, 18, 130), ("B", 60, 10, 510)]
    assert start.rate == rate


def test_drop_frame_counting_follows_what_the_timeline_says():
    rate = 30000 / 1001
    timeline = build(rate, start_tc="00:00:59;28")
    assert ";" not in to_timecode(timeline, RT(0, rate))  # OTIO records no DF flag: NDF
    timeline.metadata["fcp_xml"] = {"timecode": {"displayformat": "DF"}}  # as FCP7 XML says
    assert to_timecode(timeline, RT(0, rate)) == "00:00:59;28"
    assert to_timecode(timeline, RT(2, rate)) == "00:01:00;02"  # minute 1 drops frames 00, 01
    assert ";" not in to_timecode(build(25.0), RT(0, 25.0))  # never DF at 25 fps


def test_time_warps_scale_source_time_and_freeze_frames_are_refused():
    rate = 24.0
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    fast = clip("fast", 10, 20, rate)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    frozen = clip("frozen", 0, 10, rate)
    frozen.effects.append(otio.schema.FreezeFrame())
    track.extend([fast, frozen])
    timeline = otio.schema.Timeline(tracks=[track])
    first = resolve_segments(timeline, TR(RT(0, rate), RT(20, rate)))
    assert [(s.source_range.start_time.value, s.source_range.duration.value, s.time_scalar)
            for s in first] == [(10, 40, 2.0)]
    with pytest.raises(TimelineError, match="'frozen' is frozen"):
        resolve_segments(timeline, TR(RT(0, rate), RT(30, rate)))


def test_disabled_tracks_and_clips_are_not_picture():
    timeline = build(25.0)
    timeline.tracks[1].enabled = False  # V2 off: A shows through
    timeline.tracks[0][0].enabled = False  # and A itself off
    names = [s.clip_name for s in resolve_segments(timeline, selection_range(
        timeline, Selection()))]
    assert names == ["B", "C"]


def test_selections_by_clip_track_and_marker_and_their_errors():
    timeline = build(25.0)
    timeline.tracks.markers.append(otio.schema.Marker(
        name="door", color=otio.schema.MarkerColor.GREEN,
        marked_range=TR(RT(62, 25), RT(20, 25))))
    assert selection_range(timeline, Selection(clip="C")).start_time.value == 90
    chosen = selection_range(timeline, Selection(clip="2"))  # the 2nd clip, B, as the nest shows it
    assert (chosen.start_time.value, chosen.duration.value) == (60, 30)
    assert selection_range(timeline, Selection(track=2)).duration.value == 30
    assert selection_range(timeline, Selection(marker="GREEN")).start_time.value == 62
    assert selection_range(timeline, Selection(marker="door")).duration.value == 20
    for bad, message in [(Selection(marker="x"), "no marker named or coloured 'x'"),
                         (Selection(clip="Z"), "no video clip named or numbered 'Z'"),
                         (Selection(track=3), "no enabled video track 3"),
                         (Selection(tc_in="02:00:00:00", tc_out="02:00:01:00"),
                          "lies outside the timeline"),
                         (Selection(tc_in="01:00:01:00", tc_out="01:00:00:00"),
                          "is not after --in")]:
        with pytest.raises(TimelineError, match=message):
            selection_range(timeline, bad)


def test_real_files_from_other_tools_read_and_resolve():
    nested = read_timeline(SHARED / "nested_example.otio")
    parts = resolve_segments(nested, TR(RT(0, 24), RT(390, 24)))
    warped = [s for s in parts if s.clip_name == "Clip Inside A Stack 2"][0]
    assert warped.time_scalar == pytest.approx(0.8545454551724138)
    assert warped.source_range.duration.value == pytest.approx(24.0)
    with pytest.raises(TimelineError, match="'Nested Track' is frozen"):
        resolve_segments(nested, TR(RT(0, 24), nested.duration()))
    premiere = read_timeline(SHARED / "premiere_example.xml")
    media = {s.media for s in resolve_segments(premiere, selection_range(premiere, Selection()))}
    assert "/D:/media/sc01_sh010_anim.mov" in media
    with pytest.raises(TimelineError, match="carries no frame rate"):
        read_timeline(SHARED / "screening_example.edl")
    edl = read_timeline(SHARED / "screening_example.edl", rate=exact_rate(23.976))
    assert len(edl.tracks[0].find_clips()) > 5


def test_new_versions_never_touch_the_source(tmp_path):
    source = tmp_path / "cut.otio"
    otio.adapters.write_to_file(build(25.0), str(source))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    first = write_new_version(read_timeline(source), source)
    second = write_new_version(read_timeline(source), source, fmt="xml")
    assert first.name == "cut_foley_v001.otio" and second.name == "cut_foley_v001.xml"
    assert write_new_version(read_timeline(source), source).name == "cut_foley_v002.otio"
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TimelineError, match="unsupported timeline format '.txt'"):
        read_timeline(tmp_path / "notes.txt")
    with pytest.raises(TimelineError, match="timeline file not found"):
        read_timeline(tmp_path / "gone.otio")


def test_bundles_read_with_their_media_and_new_versions_are_bundles_too(tmp_path, monkeypatch):
    from opentimelineio.url_utils import filepath_from_url
    monkeypatch.setenv("MFMJT_CACHE_DIR", str(tmp_path / "cache"))
    media = tmp_path / "shot.mov"
    media.write_bytes(b"\0" * 64)  # the bundle writers only copy the file
    timeline = otio.schema.Timeline(name="b", tracks=[otio.schema.Track(kind="Video")])
    timeline.tracks[0].append(clip("shot", 0, 10, 25.0, media=str(media)))
    for ext in (".otioz", ".otiod"):
        bundle = tmp_path / f"cut{ext}"
        otio.adapters.write_to_file(timeline, str(bundle))
        read = read_timeline(bundle)
        url = read.find_clips()[0].media_reference.target_url
        # the bundle's "media/shot.mov" made absolute: inside the .otiod, or unpacked from the zip
        inside = Path(filepath_from_url(url))
        assert inside.is_file() and inside.read_bytes() == media.read_bytes()
        assert (inside.parent.parent == bundle) == (ext == ".otiod")
        first, second = write_new_version(read, bundle), write_new_version(read, bundle)
        assert (first.name, second.name) == (f"cut_foley_v001{ext}", f"cut_foley_v002{ext}")
        again = read_timeline(second).find_clips()[0].media_reference.target_url
        assert Path(filepath_from_url(again)).read_bytes() == media.read_bytes()
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name or p.name.startswith(".")]


def test_an_edl_source_gets_an_otio_result_and_writer_failures_are_one_line(tmp_path):
    edl = tmp_path / "screening.edl"
    edl.write_bytes((SHARED / "screening_example.edl").read_bytes())
    timeline = read_timeline(edl, rate=exact_rate(23.976))
    # OTIO's CMX 3600 writer would drop every audio track, the Foley with them
    assert write_new_version(timeline, edl).name == "screening_foley_v001.otio"
    with pytest.raises(TimelineError) as failed:  # EDL clips know no media length: AAF refuses
        write_new_version(timeline, edl, fmt="aaf")
    assert str(failed.value).startswith("screening_foley_v001.aaf: the 'AAF' writer failed")
    assert "\n" not in str(failed.value) and str(failed.value).endswith("try another --format")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["screening.edl",
                                                          "screening_foley_v001.otio"]


def test_several_sequences_are_listed_and_picked_and_broken_files_named(tmp_path):
    project = tmp_path / "project.xml"
    reels = [build(25.0), build(25.0, start_tc="02:00:00:00")]
    reels[0].name, reels[1].name = "reel 1", "reel 2"
    otio.adapters.write_to_file(otio.schema.SerializableCollection(name="project", children=reels),
                                str(project), adapter_name="fcp_xml")
    with pytest.raises(TimelineError, match=r"holds 2 sequences \(1: reel 1; 2: reel 2\); pick "
                                            r"one with --sequence NAME\|NUMBER"):
        read_timeline(project)
    assert to_timecode(read_timeline(project, sequence="2"), RT(0, 25)) == "02:00:00:00"
    assert read_timeline(project, sequence="reel 1").name == "reel 1"
    with pytest.raises(TimelineError, match="no sequence 'reel 3'; it holds 'reel 1', 'reel 2'"):
        read_timeline(project, sequence="reel 3")
    broken = tmp_path / "broken.xml"
    broken.write_bytes(project.read_bytes()[:300])  # cut off mid-file, as by a failed copy
    with pytest.raises(TimelineError, match=rf"{broken}: unreadable timeline \(ParseError"):
        read_timeline(broken)


def test_a_clip_switched_off_in_fcp7_xml_is_not_picture(tmp_path):
    """OTIO's FCP7 reader leaves `<enabled>FALSE</enabled>` clips enabled; we do not."""
    text = (SHARED / "premiere_example.xml").read_text()
    first_video = text.index('<clipitem id="clipitem-2"')  # V2, record 13, the first picture
    at = text.index("<enabled>TRUE</enabled>", first_video)
    off = tmp_path / "switched_off.xml"
    off.write_text(text[:at] + "<enabled>FALSE</enabled>" + text[at + len("<enabled>TRUE</enabled>"):])

    def pictures(path):
        timeline = read_timeline(path)
        return [(s.clip_name, s.record_range.start_time.value)
                for s in resolve_segments(timeline, selection_range(timeline, Selection()))]
    before, after = pictures(SHARED / "premiere_example.xml"), pictures(off)
    assert before[0] == ("sc01_sh010_anim.mov", 13.0)
    assert [p for p in before if p not in after] == [("sc01_sh010_anim.mov", 13.0)]
    clip = read_timeline(off).tracks[1].find_clips()[0]
    assert (clip.name, clip.enabled) == ("sc01_sh010_anim.mov", False)


def test_an_edl_reads_in_full_record_timecodes_loc_markers_and_every_event(tmp_path, capsys):
    """Before: every clip's record_in was null, the start showed as 00:00:00:00, LOC markers were
    missing and `--all` found no video at all."""
    from mfmjt_plugin.cli import main
    edl = SHARED / "screening_example.edl"
    assert main(["timeline", "inspect", str(edl), "--rate", "23.976", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["start"] == "00:59:53:11"
    assert [c["record_in"] for c in report["clips"]][:4] == [
        "00:59:53:11", "00:59:54:18", "00:59:56:20", "00:59:58:00"]
    assert None not in [c["record_in"] for c in report["clips"]]
    assert [(m["name"], m["color"], m["record_in"]) for m in report["markers"]] == [
        ("ANIM FIX NEEDED", "RED", "01:00:01:14"), ("CHANGE APPROVED", "GREEN", "01:00:15:13")]
    timeline = read_timeline(edl, rate=exact_rate(23.976))
    segments = resolve_segments(timeline, selection_range(timeline, Selection()))
    assert len(segments) == 9 and segments[0].clip_name == "ZZ100_501 (LAY3)"
    assert to_timecode(timeline, segments[-1].record_range.end_time_exclusive()) == "01:00:37:04"
    assert main(["timeline", "foley", str(edl), "--rate", "23.976", "--all"]) == 1
    assert "offline media under the selection: ZZ100_501 (LAY3) (no media reference)" in \
        capsys.readouterr().err


def test_clips_without_media_relink_by_name_and_the_new_version_points_there(tmp_path):
    from mfmjt_plugin.timeline.foley import relink, relinked
    found = tmp_path / "footage" / "day1"
    found.mkdir(parents=True)
    (found / "ZZ100_501.mov").write_bytes(b"")
    (found / "ZZ100_501.wav").write_bytes(b"")  # not a movie
    timeline = read_timeline(SHARED / "screening_example.edl", rate=exact_rate(23.976))
    first = [s for s in resolve_segments(timeline, selection_range(timeline, Selection()))][:1]
    files = relink(first, tmp_path / "footage")
    assert files == {"<no media: ZZ100_501 (LAY3)>": found / "ZZ100_501.mov"}
    moved = relinked(timeline, files)
    clip = moved.tracks[0].find_clips()[0]
    assert clip.media_reference.target_url == (found / "ZZ100_501.mov").as_uri()
    assert isinstance(timeline.tracks[0].find_clips()[0].media_reference, otio.schema.MissingReference)


def _title_over(rate: float = 25.0) -> otio.schema.Timeline:
    """V1: three clips all named 'shot'; V2: a title with alpha over the second."""
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for start in (0, 100, 200):
        v1.append(otio.schema.Clip(name="shot", media_reference=otio.schema.ExternalReference(
            target_url=f"/media/shot{start}.mov"), source_range=TR(RT(start, rate), RT(50, rate))))
    v2 = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Video)
    v2.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(50, rate))))
    v2.append(otio.schema.Clip(name="lower third", media_reference=otio.schema.GeneratorReference(
        generator_kind="Text"), source_range=TR(RT(0, rate), RT(50, rate))))
    return otio.schema.Timeline(name="t", tracks=[v1, v2], global_start_time=RT(90000, rate))


def test_a_title_over_a_named_clip_or_track_does_not_take_its_foley():
    timeline = _title_over()
    chosen = selection_range(timeline, Selection(clip="2"))
    assert [s.clip_name for s in resolve_segments(timeline, chosen)] == ["lower third"]
    seen = resolve_segments(timeline, chosen, see_through_generated=True)
    assert [(s.clip_name, s.media, s.record_range.start_time.value) for s in seen] == [
        ("shot", "/media/shot100.mov", 50)]
    whole_track = selection_range(timeline, Selection(track=1))
    assert [s.media for s in resolve_segments(timeline, whole_track, see_through_generated=True)] \
        == ["/media/shot0.mov", "/media/shot100.mov", "/media/shot200.mov"]


def test_an_ambiguous_clip_name_lists_the_candidates():
    timeline = _title_over()
    with pytest.raises(TimelineError) as failed:
        selection_range(timeline, Selection(clip="shot"))
    assert str(failed.value) == ("3 video clips are named 'shot': #1 at 01:00:00:00, #2 at "
                                 "01:00:02:00, #3 at 01:00:04:00; pick one with --clip NUMBER")


def _newer(tmp_path, change) -> Path:
    data = json.loads((SHARED / "simple_cut.otio").read_text())
    change(data)
    path = tmp_path / "newer.otio"
    path.write_text(json.dumps(data))
    return path


def test_a_timeline_from_a_newer_opentimelineio_is_read_with_a_warning(tmp_path, capsys):
    from mfmjt_plugin.cli import main

    def newer_markers(data):
        markers = data["tracks"]["markers"]
        markers.append({"OTIO_SCHEMA": "Marker.3", "name": "door", "metadata": {},
                        "color": {"r": 0.1, "g": 0.9, "b": 0.2, "a": 1.0}, "comment": "",
                        "marked_range": {"OTIO_SCHEMA": "TimeRange.1",
                                         "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 10.0},
                                         "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 24.0, "value": 0.0}}})
    path = _newer(tmp_path, newer_markers)
    with pytest.raises(otio.exceptions.OTIOError, match="unsupported schema version"):
        otio.adapters.read_from_file(str(path))
    assert main(["timeline", "inspect", str(path), "--json"]) == 0
    out = capsys.readouterr()
    assert out.err == (f"warning: {path}: written by a newer OpenTimelineIO; read Marker.3 as "
                       "Marker.2 (RGB marker colours as the nearest named colour)\n")
    assert [(m["name"], m["color"]) for m in json.loads(out.out)["markers"]] == [("door", "GREEN")]


def test_a_schema_this_opentimelineio_does_not_know_is_named(tmp_path, capsys):
    from mfmjt_plugin.cli import main

    def unknown(data):
        data["tracks"]["children"][0]["children"][0]["effects"] = [
            {"OTIO_SCHEMA": "ColorGrade.1", "name": "", "metadata": {}, "effect_name": "grade"},
            {"OTIO_SCHEMA": "Marker.9", "name": "x"}]
    path = _newer(tmp_path, unknown)
    assert main(["timeline", "inspect", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: written by a newer OpenTimelineIO with schemas this version "
        f"({otio.__version__}) does not know: ColorGrade.1; export it for OpenTimelineIO 0.18 "
        "or as FCP7 XML\n")


def test_a_compound_clip_shows_its_top_layer_once_and_no_audio_layer():
    """A nested stack (FCPXML compound clip) with two picture layers and a sound layer: its
    layers were all walked as picture, so one region came back twice (and overlapping takes)."""
    rate = 30.0

    def clip(name, start, length):
        return otio.schema.Clip(name=name, media_reference=otio.schema.ExternalReference(
            target_url=f"/media/{name}.mov"), source_range=TR(RT(start, rate), RT(length, rate)))
    lower = otio.schema.Track(name="lower", kind=otio.schema.TrackKind.Video)
    lower.append(clip("under", 0, 90))
    upper = otio.schema.Track(name="upper", kind=otio.schema.TrackKind.Video)
    upper.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(30, rate))))
    upper.append(clip("over", 0, 30))
    sound = otio.schema.Track(name="sound", kind=otio.schema.TrackKind.Audio)
    sound.append(clip("dialogue", 0, 90))
    compound = otio.schema.Stack(name="compound", children=[lower, upper, sound])
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    v1.append(compound)
    timeline = otio.schema.Timeline(name="c", tracks=[v1])
    parts = resolve_segments(timeline, TR(RT(0, rate), RT(90, rate)))
    assert [(s.clip_name, s.record_range.start_time.value, s.record_range.duration.value)
            for s in parts] == [("under", 0, 30), ("over", 30, 30), ("under", 60, 30)]
