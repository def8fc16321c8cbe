"""Timeline bridge end to end on a small random-weight bundle: a timeline in, a new version with
frame-exact Foley takes out, everything else unchanged, the source untouched."""
from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from engine.media.bwf import OUTPUT_RATE, read_bwf
from mfmjt_plugin.cli import main
from mfmjt_plugin.timeline.insert import METADATA_KEY, TRACK_NAME
from tests.test_pipeline import bundle  # noqa: F401  (the small random-weight bundle fixture)
from trainer.synth.scene import sample_scene
from trainer.synth.writer import write_scene

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
RATE = 25.0


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    scene = sample_scene(4, namespace="test", duration=4.0, sound_class="wood")
    return write_scene(scene, root)["video"]


def build_timeline(movie, path):
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    ref = otio.schema.ExternalReference(target_url=str(movie),
                                        available_range=TR(RT(0, RATE), RT(100, RATE)))
    v1.append(otio.schema.Clip(name="shot1", media_reference=ref,
                               source_range=TR(RT(30, RATE), RT(40, RATE))))
    v1.append(otio.schema.Gap(source_range=TR(RT(0, RATE), RT(10, RATE))))
    v1.append(otio.schema.Clip(name="shot2", media_reference=ref.clone(),
                               source_range=TR(RT(5, RATE), RT(30, RATE))))
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    timeline = otio.schema.Timeline(name="reel 1", tracks=[v1, a1],
                                    global_start_time=RT(90000, RATE))  # 01:00:00:00
    timeline.tracks.markers.append(otio.schema.Marker(name="editor's note",
                                                      marked_range=TR(RT(3, RATE), RT(0, RATE))))
    timeline.metadata["fcp_xml"] = {"rate": {"ntsc": "FALSE", "timebase": "25"}}
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_foley_for_the_whole_timeline_lands_frame_exact_in_a_new_version(tmp_path, media,
                                                                         bundle, capsys):  # noqa: F811
    source = build_timeline(media, tmp_path / "reel1.otio")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    code = main(["timeline", "foley", str(source), "--all", "--prompt", "knocks", "--takes", "2",
                 "--bundle", str(bundle), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["timeline"].endswith("reel1_foley_v001.otio") and report["segments"] == 2
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    original = otio.adapters.read_from_file(str(source))
    result = otio.adapters.read_from_file(report["timeline"])
    # everything that was there is unchanged: the result minus our tracks and markers is the
    # source, deep-compared
    stripped = result.clone()
    for track in [t for t in stripped.tracks if t.name.startswith(TRACK_NAME)]:
        stripped.tracks.remove(track)
    for marker in [m for m in stripped.tracks.markers if METADATA_KEY in m.metadata]:
        stripped.tracks.markers.remove(marker)
    assert stripped.to_json_string() == original.to_json_string()
    foley = [t for t in result.tracks if t.name.startswith(TRACK_NAME)]
    assert [(t.name, t.enabled) for t in foley] == [(TRACK_NAME, True),
                                                    (f"{TRACK_NAME} alt 2", False)]
    placed = [(type(i).__name__, i.duration().value) for i in foley[0]]
    assert placed == [("Clip", 40), ("Gap", 10), ("Clip", 30)]
    first = foley[0][0]
    # shot1 opens the timeline: its head handle stops at the timeline's start
    assert first.source_range.start_time == RT(0, RATE)
    assert first.metadata[METADATA_KEY]["prompt"] == "knocks"
    assert first.metadata[METADATA_KEY]["take"] == 1
    # each placed take carries its own seed and sync score, as the report does
    assert first.metadata[METADATA_KEY]["take_seed"] == report["takes"][0]["seed"]
    assert first.metadata[METADATA_KEY]["sync_score"] == report["takes"][0]["sync_score"]
    assert 0.0 <= report["takes"][0]["sync_score"] <= 1.0
    assert len(result.tracks.markers) == 3
    assert result.tracks.markers[2].marked_range == TR(RT(50, RATE), RT(30, RATE))
    # the WAV: 48 kHz / 24-bit, head + body + tail in whole frames, timecode of its first sample
    wav = read_bwf(report["takes"][0]["wav"])
    assert wav.sample_rate == OUTPUT_RATE and wav.bit_depth == 24
    frames = Fraction(wav.samples.shape[1], OUTPUT_RATE) * 25
    assert frames.denominator == 1 and frames == 0 + 40 + 25
    assert wav.bext["time_reference"] == 3600 * 25 * OUTPUT_RATE // 25
    second = read_bwf(report["takes"][2]["wav"])  # shot2: source starts at frame 5: 5 frames of head
    assert Fraction(second.samples.shape[1], OUTPUT_RATE) * 25 == 5 + 30 + 25
    assert report["takes"][2]["record_in"] == "01:00:02:00"
    assert first.media_reference.available_range.duration == RT(65, RATE)


def test_a_timeline_starting_at_midnight_gets_takes_without_a_head_handle(tmp_path, media,
                                                                          bundle, capsys):  # noqa: F811
    """`--all` used to fail: "record start 0.000 s minus the head handle ... is before midnight"."""
    source = build_timeline(media, tmp_path / "reel0.otio")
    timeline = otio.adapters.read_from_file(str(source))
    timeline.global_start_time = RT(0, RATE)
    otio.adapters.write_to_file(timeline, str(source))
    assert main(["timeline", "foley", str(source), "--all", "--prompt", "knocks",
                 "--bundle", str(bundle), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    first, second = (read_bwf(t["wav"]) for t in report["takes"])
    assert first.bext["time_reference"] == 0
    assert Fraction(first.samples.shape[1], OUTPUT_RATE) * 25 == 0 + 40 + 25
    # shot2 starts at record frame 50, media frame 5: the media's start bounds its head
    assert second.bext["time_reference"] == (50 - 5) * OUTPUT_RATE // 25


def test_bad_selections_and_offline_media_fail_cleanly(tmp_path, media, bundle, capsys):  # noqa: F811
    source = build_timeline(media, tmp_path / "reel1.otio")
    offline = tmp_path / "offline.otio"
    timeline = otio.adapters.read_from_file(str(source))
    for clip in timeline.find_clips():
        clip.media_reference.target_url = "/nowhere/" + media.name
    otio.adapters.write_to_file(timeline, str(offline))
    assert main(["timeline", "foley", str(offline), "--all", "--bundle", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert "offline media under the selection: shot1 (/nowhere/" in err and "--search" in err
    assert main(["timeline", "foley", str(offline), "--all", "--bundle", str(bundle),
                 "--search", str(media.parent), "--json"]) == 0  # relinked by file name
    assert json.loads(capsys.readouterr().out)["segments"] == 2
    assert main(["timeline", "foley", str(source), "--in", "01:00:01:20", "--out",
                 "01:00:02:00", "--bundle", str(bundle)]) == 1
    assert "no video under 01:00:01:20-01:00:02:00" in capsys.readouterr().err
    assert main(["timeline", "foley", str(source), "--in", "02:00:00:00", "--out",
                 "02:00:01:00", "--bundle", str(bundle)]) == 1
    assert "lies outside the timeline" in capsys.readouterr().err
    leftovers = [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    assert leftovers == []


def test_inspect_lists_tracks_clips_and_missing_media(tmp_path, media, capsys):
    source = build_timeline(media, tmp_path / "reel1.otio")
    assert main(["timeline", "inspect", str(source), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rate"] == RATE and report["start"] == "01:00:00:00"
    assert [c["record_in"] for c in report["clips"]] == ["01:00:00:00", "01:00:02:00"]
    assert report["missing_media"] == []
    assert main(["timeline", "inspect", str(source)]) == 0  # text: clips numbered as --clip counts
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("  clip ")] == [
        "  clip 1 'shot1' at 01:00:00:00", "  clip 2 'shot2' at 01:00:02:00"]
    assert main(["timeline", "inspect", str(tmp_path / "none.otio")]) == 1
    assert "timeline file not found" in capsys.readouterr().err


@pytest.mark.parametrize("fmt, suffix", [("xml", ".xml"), ("aaf", ".aaf"), ("fcpxml", ".fcpxml")])
def test_exports_read_back_with_their_own_adapters(tmp_path, media, bundle, fmt, suffix,  # noqa: F811
                                                   capsys):
    source = build_timeline(media, tmp_path / "reel1.otio")
    assert main(["timeline", "foley", str(source), "--clip", "shot2", "--prompt", "wood",
                 "--format", fmt, "--bundle", str(bundle), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["timeline"].endswith(f"reel1_foley_v001{suffix}")
    back = otio.adapters.read_from_file(report["timeline"])
    timeline = back if isinstance(back, otio.schema.Timeline) else \
        next(iter(back.find_children(descended_from_type=otio.schema.Timeline)))
    audio = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Audio
             and t.find_clips()]
    clips = [c for t in audio for c in t.find_clips()]
    assert len(clips) == 1
    placed = clips[0].transformed_time_range(clips[0].trimmed_range(), timeline.tracks)
    assert placed.start_time.to_frames() == 50 and placed.duration.to_frames() == 30
    assert clips[0].source_range.start_time.to_frames() == 5  # the head handle stays in the file
    if fmt == "aaf":  # a companion: the Foley alone, to import beside the editor's sequence
        assert report["companion"].startswith("the AAF holds only the Foley tracks")
        assert [t.kind for t in timeline.tracks if t.find_clips()] == [otio.schema.TrackKind.Audio]
    else:
        assert "companion" not in report
        assert any(t.kind == otio.schema.TrackKind.Video and t.find_clips() for t in timeline.tracks)


def test_a_format_that_cannot_hold_the_timeline_fails_before_generating(tmp_path, bundle,  # noqa: F811
                                                                        capsys):
    """OTIO's FCPXML writer cannot express the Premiere sample; that used to surface only after
    every take had been generated."""
    from tests.media_factory import sample_with_stand_ins
    source, stand_ins = sample_with_stand_ins(tmp_path, "premiere_example.xml",
                                              {"sc01_master_layerA_sh030_temp.mov": 300})
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["timeline", "foley", str(source), "--clip", "sc01_master_layerA_sh030_temp.mov",
                 "--format", "fcpxml", "--search", str(stand_ins), "--bundle", str(bundle)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("error: premiere_example_foley_v001.fcpxml: the 'fcpx_xml' writer failed")
    assert err.endswith("try another --format (checked before generating; nothing was written)")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_razor_cut_inside_one_shot_is_generated_as_one_request():
    from mfmjt_plugin.timeline.foley import merge_contiguous
    from mfmjt_plugin.timeline.segments import resolve_segments
    ref = otio.schema.ExternalReference(target_url="/media/a.mov")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for start, duration in ((10, 20), (30, 15)):  # continues the media: one shot, cut in two
        track.append(otio.schema.Clip(name="a", media_reference=ref.clone(),
                                      source_range=TR(RT(start, RATE), RT(duration, RATE))))
    track.append(otio.schema.Clip(name="a", media_reference=ref.clone(),  # jumps: a new shot
                                  source_range=TR(RT(90, RATE), RT(10, RATE))))
    timeline = otio.schema.Timeline(tracks=[track])
    parts = merge_contiguous(resolve_segments(timeline, TR(RT(0, RATE), RT(45, RATE))))
    assert [(p.record_range.start_time.value, p.record_range.duration.value,
             p.source_range.start_time.value) for p in parts] == [(0, 35, 10), (35, 10, 90)]


@pytest.mark.parametrize("rate, start_tc, pick, record_in, head", [
    (24000 / 1001, "01:00:00:00", ["--all"], "01:00:01:16", 23),  # 30 frames in: 1 s is 23.976
    (30000 / 1001, "01:00:00;00", ["--in", "01:00:01;15", "--out", "01:00:02;09"],
     "01:00:01;15", 29),  # drop-frame, cut by the selection: 35 frames in
    (60000 / 1001, "01:00:00:00", ["--all"], "01:00:00:40", 30),  # 30 frames in: 0.5005 s
])
def test_takes_are_frame_exact_at_fractional_rates(tmp_path, media, bundle, rate,  # noqa: F811
                                                   start_tc, pick, record_in, head, capsys):
    """Handle, body and tail in whole frames of the timeline rate; the first sample's time of day
    is the record timecode minus the head handle."""
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    # 40 frames of gap first, so the head handle is not stopped by the timeline's start
    v1.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(40, rate))))
    v1.append(otio.schema.Clip(name="shot", media_reference=otio.schema.ExternalReference(
        target_url=str(media)), source_range=TR(RT(30, rate), RT(30, rate))))
    start = otio.opentime.from_timecode(start_tc, rate)
    source = tmp_path / "fractional.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="r", tracks=[v1],
                                                     global_start_time=start), str(source))
    assert main(["timeline", "foley", str(source), *pick, "--bundle", str(bundle), "--json"]) == 0
    take = json.loads(capsys.readouterr().out)["takes"][0]
    assert take["record_in"] == record_in
    body = 24 if "--in" in pick else 30
    record = start.value + 40 + (5 if "--in" in pick else 0)
    per_frame = Fraction(OUTPUT_RATE) / Fraction(rate).limit_denominator(1001)
    tail = -(-Fraction(1) * Fraction(rate).limit_denominator(1001) // 1)  # 1 s, rounded up
    wav = read_bwf(take["wav"])
    frames = head + body + tail
    assert wav.samples.shape[1] == -(-frames * per_frame // 1)  # whole frames, rounded up
    assert wav.bext["time_reference"] == round((record - head) * per_frame)
    placed = otio.adapters.read_from_file(
        str(tmp_path / "fractional_foley_v001.otio")).tracks[-1].find_clips()[0]
    assert placed.source_range == TR(RT(head, rate), RT(body, rate))


def test_unwritable_outputs_fail_before_work_and_a_failed_write_leaves_nothing(
        tmp_path, media, bundle, capsys):  # noqa: F811
    source = build_timeline(media, tmp_path / "reel1.otio")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    before = sorted(p.name for p in tmp_path.iterdir())
    for option in ("--media-out", "--timeline-out"):
        assert main(["timeline", "foley", str(source), "--all", "--bundle", str(bundle),
                     option, str(blocker / "sub")]) == 1
        err = capsys.readouterr().err
        assert f"{blocker / 'sub'}: cannot write there" in err and err.endswith(f"({option})\n")
    # MLT cannot hold a freeze frame: the writer fails after the takes were generated, and the
    # takes and their new folder go with it
    timeline = otio.adapters.read_from_file(str(source))
    timeline.tracks[1].append(otio.schema.Clip(
        name="held", media_reference=otio.schema.ExternalReference(target_url=str(media)),
        source_range=TR(RT(0, RATE), RT(10, RATE)), effects=[otio.schema.FreezeFrame()]))
    otio.adapters.write_to_file(timeline, str(source))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert main(["timeline", "foley", str(source), "--clip", "shot1", "--format", "mlt",
                 "--bundle", str(bundle)]) == 1
    assert "clip 'held': MLT XML cannot hold a freeze frame" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest


def test_otio_validation_passes_on_the_new_version(tmp_path, media, bundle, capsys):  # noqa: F811
    """otiotool --verify-ranges: every clip, ours included, lies inside its media's available
    range; every media URL (our file:// URIs too) resolves to a file."""
    import subprocess
    import sys

    from opentimelineio.url_utils import filepath_from_url
    source = build_timeline(media, tmp_path / "reel1.otio")
    assert main(["timeline", "foley", str(source), "--all", "--takes", "2", "--bundle",
                 str(bundle), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["timeline"]
    done = subprocess.run([sys.executable, "-m", "opentimelineio.console.otiotool", "-i", result,
                           "--verify-ranges"], capture_output=True, text=True, check=True)
    verdicts = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if "CLIP:" in line]
    assert len(verdicts) == 2 + 4 and set(v.split(" ", 1)[1] for v in verdicts) == {"IN BOUNDS"}
    timeline = otio.adapters.read_from_file(result)
    for clip in timeline.find_clips():
        url = clip.media_reference.target_url
        assert Path(filepath_from_url(url) if url.startswith("file:") else url).is_file()


def test_a_premiere_timeline_relinked_gets_foley_back_in_premiere_xml(tmp_path, bundle,  # noqa: F811
                                                                      capsys):
    """The real Premiere export in shared/: its media (D:/media/...) relinked from a search folder
    of stand-ins, the title slug over most of it skipped, the result read back by the FCP7 XML
    adapter with the takes at their record frames."""
    from tests.media_factory import sample_with_stand_ins
    source, stand_ins = sample_with_stand_ins(tmp_path, "premiere_example.xml", {
        "sc01_sh010_anim.mov": 120, "sc01_master_layerA_sh030_temp.mov": 300})
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert main(["timeline", "inspect", str(source), "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    assert [c["generated"] for c in inspected["clips"] if c["name"] == "test_title"] == ["Slug"]
    assert len(inspected["missing_media"]) == 6 and "D:/media/sc01_sh010_anim.mov" in \
        inspected["missing_media"][2]
    assert main(["timeline", "foley", str(source), "--all", "--prompt", "steps", "--search",
                 str(stand_ins), "--bundle", str(bundle), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["timeline"] == str(tmp_path / "premiere_example_foley_v001.xml")
    assert report["skipped"] == [{"clip": "test_title", "reason": "generated picture (Slug)",
                                  "record_in": "00:00:00:15", "record_out": "00:00:31:26"}]
    assert [(t["clip"], t["record_in"]) for t in report["takes"]] == [
        ("sc01_sh010_anim.mov", "00:00:00:13"),
        ("sc01_master_layerA_sh030_temp.mov", "00:00:31:26"),
        ("sc01_sh010_anim.mov", "00:00:38:24")]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert [Path(t["wav"]).name for t in report["takes"]] == [
        "sc01-sh010-layerA_sc01-sh010-anim_FOLEY_steps_v001_t01.wav",
        "sc01-sh010-layerA_sc01-master-layerA-sh030_FOLEY_steps_v001_t01.wav",
        "sc01-sh010-layerA_sc01-sh010-anim_FOLEY_steps_v002_t01.wav"]
    back = otio.adapters.read_from_file(report["timeline"])
    # FCP7 XML has no track names: the Foley is the added last audio track, its clips named
    # after the takes, its regions marked
    *theirs, foley = back.tracks
    placed = [(c.name, c.transformed_time_range(c.trimmed_range(), back.tracks).start_time.value,
               c.duration().value) for c in foley.find_clips()]
    assert placed == [(Path(t["wav"]).stem, start, length) for t, start, length in
                      zip(report["takes"], (13, 956, 1164), (2, 208, 82))]
    assert [(m.name, m.marked_range.start_time.value) for m in back.tracks.markers][-3:] == \
        [("FOLEY: steps", 13), ("FOLEY: steps", 956), ("FOLEY: steps", 1164)]
    # the editor's own tracks come back as they went in
    original = otio.adapters.read_from_file(str(source))

    def shape(tracks):
        return [(t.kind, t.enabled, [
            (type(i).__name__, i.name, (i.in_offset, i.out_offset)
             if isinstance(i, otio.schema.Transition) else (i.trimmed_range(), i.enabled))
            for i in t]) for t in tracks]
    assert shape(theirs) == shape(original.tracks)
    # under the slug alone there is nothing filmed to follow
    assert main(["timeline", "foley", str(source), "--in", "00:00:05:00", "--out", "00:00:06:00",
                 "--bundle", str(bundle)]) == 1
    assert "no video under 00:00:05:00-00:00:06:00; only generated pictures there: test_title " \
           "(Slug); select a range with picture" in capsys.readouterr().err


def test_regenerating_reuses_the_cached_picture_and_the_seed_decides_the_take(
        tmp_path, media, bundle, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MFMJT_CACHE_DIR", str(tmp_path / "cache"))
    source = build_timeline(media, tmp_path / "reel1.otio")
    takes, cached = [], []
    for seed in (1, 2, 1):
        assert main(["timeline", "foley", str(source), "--clip", "shot2", "--seed", str(seed),
                     "--bundle", str(bundle), "--json"]) == 0
        takes.append(read_bwf(json.loads(capsys.readouterr().out)["takes"][0]["wav"]).samples)
        cached.append(sorted(p.name for p in (tmp_path / "cache" / "features").rglob("*")
                             if p.is_file()))
    assert cached[0] and cached[0] == cached[1] == cached[2]  # the picture was read once
    assert not np.array_equal(takes[0], takes[1])
    assert np.array_equal(takes[0], takes[2])  # the same seed gives the same take


def test_a_cancelled_run_leaves_no_takes(tmp_path, media, bundle):  # noqa: F811
    """Cancelling (Ctrl-C) after the first of two segments: its takes are removed with the media
    folder the run made; no timeline version is written."""
    from mfmjt_plugin.timeline.foley import FoleySettings, make_foley
    from mfmjt_plugin.timeline.selection import Selection
    source = build_timeline(media, tmp_path / "reel1.otio")
    seen = []

    def cancel_after_first(done, total):
        seen.append(sorted(p.name for p in (tmp_path / "reel1_foley_media").iterdir()))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_foley(source, Selection(), FoleySettings(takes=2, bundle=str(bundle)),
                   progress=cancel_after_first)
    assert len(seen[0]) == 2  # the first segment's two takes had been written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel1.otio"]


def test_a_named_clip_under_a_title_gets_its_foley(tmp_path, media, bundle, capsys):  # noqa: F811
    source = build_timeline(media, tmp_path / "titled.otio")
    timeline = otio.adapters.read_from_file(str(source))
    v2 = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Video)
    v2.append(otio.schema.Gap(source_range=TR(RT(0, RATE), RT(50, RATE))))
    v2.append(otio.schema.Clip(name="name title", source_range=TR(RT(0, RATE), RT(30, RATE)),
                               media_reference=otio.schema.GeneratorReference(generator_kind="Text")))
    timeline.tracks.insert(1, v2)
    otio.adapters.write_to_file(timeline, str(source))
    assert main(["timeline", "foley", str(source), "--clip", "shot2", "--bundle", str(bundle),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(t["clip"], t["record_in"], t["record_out"]) for t in report["takes"]] == [
        ("shot2", "01:00:02:00", "01:00:03:05")]
    assert report["skipped"] == []


@pytest.mark.parametrize("ext", [".otioz", ".otiod"])
def test_a_bundle_source_gets_foley_back_as_a_bundle(tmp_path, media, bundle, ext):  # noqa: F811
    """The preflight once named stand-in takes that did not exist: bundle writers refused them."""
    from opentimelineio.url_utils import filepath_from_url
    plain = build_timeline(media, tmp_path / "reel1.otio")
    source = tmp_path / f"reel1{ext}"
    otio.adapters.write_to_file(otio.adapters.read_from_file(str(plain)), str(source))
    assert main(["timeline", "foley", str(source), "--clip", "shot2", "--bundle", str(bundle)]) == 0
    result = tmp_path / f"reel1_foley_v001{ext}"
    from mfmjt_plugin.timeline.io import read_timeline
    back = read_timeline(result)  # the bundle's relative media made absolute
    (foley,) = [t for t in back.tracks if t.name == TRACK_NAME]
    (take,) = foley.find_clips()
    inside = Path(filepath_from_url(take.media_reference.target_url))
    assert inside.name.endswith("_v001_t01.wav") and inside.stat().st_size > 0


def test_an_edl_event_relinked_by_name_is_read_at_its_source_timecode(tmp_path, bundle, capsys):  # noqa: F811
    """EDL events count in source timecode (01:00:04:05) and name no media length: a camera file
    found by clip name is read from its own timecode track, not from its first frame."""
    from tests.media_factory import make_video
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "timelines"
    rate = Fraction(24000, 1001)
    found = tmp_path / "media"
    found.mkdir()
    make_video(found / "ZZ100_501.mov", fps=rate, frames=96, width=64, height=64,
               timecode="01:00:04:00")
    assert main(["timeline", "foley", str(shared / "screening_example.edl"), "--rate", "23.976",
                 "--in", "00:59:53:11", "--out", "00:59:54:18", "--search", str(found),
                 "--bundle", str(bundle), "--media-out", str(tmp_path / "takes"),
                 "--timeline-out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (take,) = report["takes"]
    assert (take["clip"], take["record_in"], take["record_out"]) == (
        "ZZ100_501 (LAY3)", "00:59:53:11", "00:59:54:18")
    wav = read_bwf(take["wav"])
    # the event opens the timeline, so no head handle; 31 frames of body from 5 frames into the
    # file (01:00:04:05 in a file starting at 01:00:04:00: read from its first frame, the range
    # would lie an hour past its end); a 1 s tail, which the 60 frames left in the file allow
    frames = Fraction(wav.samples.shape[1], OUTPUT_RATE) * rate
    assert -(-frames // 1) == 0 + 31 + 24
    assert wav.bext["time_reference"] == round(
        (otio.opentime.from_timecode("00:59:53:11", 24000 / 1001).to_seconds()) * OUTPUT_RATE)
