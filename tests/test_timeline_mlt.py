"""MLT XML exports rendered by the real `melt` (Debian's package, installed by
installers/install.sh): the picture of a cut with nesting, trims, a gap, a time warp, a dissolve and
a disabled track comes out frame for frame, and generated Foley takes sound at their record time."""
from __future__ import annotations

import json
import shutil
import subprocess
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from engine.media.bwf import read_bwf
from mfmjt_plugin.cli import main
from mfmjt_plugin.timeline.mlt import to_mlt_xml
from mfmjt_plugin.timeline.segments import TimelineError
from tests.media_factory import make_video, read_index
from tests.test_pipeline import bundle  # noqa: F401  (the small random-weight bundle fixture)
from tests.test_timeline_foley import build_timeline, media  # noqa: F401  (fixtures)

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
RATE = 25.0


def melt() -> str:
    found = shutil.which("melt")
    assert found, "melt is needed (Debian package 'melt'; bash installers/install.sh installs it)"
    return found


def render(mlt_file: Path, out: Path, *args: str) -> Path:
    done = subprocess.run([melt(), str(mlt_file), "-consumer", f"avformat:{out}", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    return out


def cut(movie: Path, rate: float = RATE) -> otio.schema.Timeline:
    """V1: A, a gap, a nested stack trimming B, a dissolve into C; V2: D at double speed over
    part of A; V3 (disabled) over everything."""
    def clip(name, start, duration, **extra):
        ref = otio.schema.ExternalReference(target_url=str(movie),
                                            available_range=TR(RT(0, rate), RT(200, rate)))
        return otio.schema.Clip(name=name, media_reference=ref,
                                source_range=TR(RT(start, rate), RT(duration, rate)), **extra)

    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    v1.append(clip("A", 10, 30))
    v1.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(10, rate))))
    nest = otio.schema.Stack(name="nest", source_range=TR(RT(5, rate), RT(20, rate)))
    inner = otio.schema.Track(name="inner", kind=otio.schema.TrackKind.Video)
    inner.append(clip("B", 100, 40))
    nest.append(inner)
    v1.append(nest)
    v1.append(otio.schema.Transition(in_offset=RT(3, rate), out_offset=RT(3, rate)))
    v1.append(clip("C", 150, 20))
    v2 = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Video)
    v2.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(5, rate))))
    v2.append(clip("D", 60, 10, effects=[otio.schema.LinearTimeWarp(time_scalar=2.0)]))
    v3 = otio.schema.Track(name="V3", kind=otio.schema.TrackKind.Video)
    v3.append(clip("E", 0, 80))
    v3.enabled = False
    timeline = otio.schema.Timeline(name="cut", tracks=[v1, v2, v3],
                                    global_start_time=RT(90000, rate))
    timeline.tracks.markers.append(otio.schema.Marker(
        name="door", marked_range=TR(RT(12, rate), RT(4, rate)),
        color=otio.schema.MarkerColor.PURPLE))
    return timeline


def expected_index(frame: int):
    """What the audience sees at record `frame` of `cut`: a source frame index, or None (black)."""
    if 5 <= frame < 15:
        return 60 + 2 * (frame - 5)  # D at double speed, on top
    if frame < 30:
        return 10 + frame
    if frame < 40:
        return None  # the gap
    if frame < 57:
        return 105 + frame - 40  # B, trimmed 5 frames in by the stack
    if frame >= 63:
        return 150 + frame - 60
    return "dissolve"


def test_melt_renders_the_picture_of_a_cut_frame_for_frame(tmp_path):
    movie = make_video(tmp_path / "index.mp4", frames=200, width=64, height=64, gop=1)
    document = tmp_path / "cut.mlt"
    document.write_text(to_mlt_xml(cut(movie), width=64, height=64))
    rendered = render(document, tmp_path / "cut.mkv", "vcodec=ffv1", "an=1")
    with av.open(str(rendered)) as container:
        images = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(images) == 80
    for frame, image in enumerate(images):
        want = expected_index(frame)
        if want is None:
            assert image.mean() < 20, f"record frame {frame} should be black"
        elif want == "dissolve":
            continue
        else:
            assert read_index(image) == want, f"record frame {frame}"
    # the 6-frame dissolve (record 57-62) plays B running on past its cut and C from 3 frames
    # before its cut, C's share growing frame by frame
    with av.open(str(movie)) as container:
        source = [f.to_ndarray(format="rgb24").astype(float) for f in container.decode(video=0)]
    shares = []
    for frame in range(57, 63):
        outgoing, incoming = source[105 + frame - 40], source[150 + frame - 60]
        differ = np.abs(incoming - outgoing) > 100
        shares.append(float(np.median((images[frame] - outgoing)[differ]
                                      / (incoming - outgoing)[differ])))
    assert shares == pytest.approx([k / 6 for k in range(6)], abs=0.03)  # half-way at the cut


def test_the_document_carries_markers_names_and_rate(tmp_path):
    for rate, num, den in ((24000 / 1001, 24000, 1001), (30000 / 1001, 30000, 1001),
                           (60000 / 1001, 60000, 1001), (25.0, 25, 1)):
        timeline = cut(tmp_path / "index.mp4", rate)
        timeline.tracks[0][0].metadata["mfmjt"] = {"prompt": "door", "take": 1}
        root = ET.fromstring(to_mlt_xml(timeline))
        profile = root.find("profile")
        assert (profile.get("frame_rate_num"), profile.get("frame_rate_den")) == (str(num), str(den))
        # frame numbers are the timeline's own: A plays source frames 10-39, then the gap
        v1 = root.find("playlist[property='V1']")
        assert [(e.tag, e.get("in"), e.get("out"), e.get("length")) for e in v1][2:4] == \
            [("entry", "10", "39", None), ("blank", None, None, "10")]
    # MLT resolves ids in document order (a forward reference crashes melt): every producer,
    # playlist and tractor is defined before anything uses it
    defined = set()
    for element in root:
        used = {e.get("producer") for e in element.iter() if e.get("producer")}
        assert used <= defined, f"{element.get('id')} uses {used - defined} before they exist"
        defined.add(element.get("id"))
    markers = root.find(".//properties[@name='shotcut:markers']")
    marker = {p.get("name"): p.text for p in markers.find("properties")}
    assert marker == {"text": "door", "start": "12", "end": "16", "color": "#800080"}
    tracks = root.findall("tractor[@title='cut']/track")
    assert [t.get("hide") for t in tracks] == [None, "audio", "audio", "both"]
    names = [p.text for p in root.iter("property") if p.get("name") == "shotcut:name"]
    assert names == ["inner", "V1", "V2", "V3"]
    meta = [p.text for p in root.iter("property") if p.get("name") == "mfmjt:metadata"]
    assert [json.loads(m) for m in meta] == [{"prompt": "door", "take": 1}]


def test_a_freeze_frame_cannot_go_to_mlt_and_says_so(tmp_path):
    timeline = cut(tmp_path / "index.mp4")
    timeline.tracks[0][0].effects.append(otio.schema.FreezeFrame())
    with pytest.raises(TimelineError, match="clip 'A': MLT XML cannot hold a freeze frame"):
        to_mlt_xml(timeline)


def read_mono(path: Path) -> np.ndarray:
    with wave.open(str(path)) as fh:
        assert fh.getframerate() == 48000 and fh.getsampwidth() == 2
        data = np.frombuffer(fh.readframes(fh.getnframes()), "<i2").astype(np.float64) / 32768
        return data.reshape(-1, fh.getnchannels()).mean(axis=1)


def test_melt_plays_the_foley_takes_at_their_record_time(tmp_path, media, bundle,  # noqa: F811
                                                         capsys):
    source = build_timeline(media, tmp_path / "reel1.otio")
    assert main(["timeline", "foley", str(source), "--all", "--prompt", "knocks", "--takes", "2",
                 "--format", "mlt", "--bundle", str(bundle), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["timeline"].endswith("reel1_foley_v001.mlt")
    rendered = read_mono(render(Path(report["timeline"]), tmp_path / "mix.wav", "video_off=1",
                                "ar=48000", "ac=1", "acodec=pcm_s16le"))
    assert len(rendered) == 80 * 48000 // 25  # the whole timeline, 80 frames
    expected = np.zeros_like(rendered)
    frame = 48000 // 25
    padded = np.concatenate([np.zeros(frame), rendered, np.zeros(frame)])
    for take, record_start in ((report["takes"][0], 0), (report["takes"][2], 50)):
        assert take["take"] == 1
        samples = read_bwf(take["wav"]).samples[0].astype(np.float64)
        head = {0: 0, 50: 5}[record_start] * frame  # the handles (none at the timeline start)
        body = samples[head:head + {0: 40, 50: 30}[record_start] * frame]
        # where the body sits best in the render, searched a frame either side of its record time
        start = record_start * frame
        scores = np.correlate(padded[start:start + len(body) + 2 * frame], body, mode="valid")
        found = start - frame + int(np.argmax(scores))
        # within a frame, as editors need; MLT 7.12 itself starts 24-bit WAVs up to a few ms off
        # at some in-points (45 samples at in=5 frames: the second take)
        assert abs(found - start) < frame
        late = start - found  # MLT plays the file from `late` samples past the in-point
        expected[start:start + len(body)] = samples[head + late:head + late + len(body)]
    # nothing else is heard: not the alternates on disabled tracks, not the camera sound in the
    # video file (the video track hides its audio), only the chosen takes
    residual = np.sqrt(np.mean((rendered - expected) ** 2)) / np.sqrt(np.mean(expected ** 2))
    assert residual < 0.01


def click_wav(path: Path, at: float, seconds: float = 2.0) -> Path:
    samples = np.zeros(int(seconds * 48000), np.int16)
    samples[int(at * 48000):int(at * 48000) + 48] = 20000
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1), fh.setsampwidth(2), fh.setframerate(48000)
        fh.writeframes(samples.tobytes())
    return path


def test_melt_sums_audio_tracks_and_nested_stacks_at_29_97(tmp_path):
    rate = 30000 / 1001

    def audio_clip(name, at, start, duration):
        ref = otio.schema.ExternalReference(target_url=click_wav(tmp_path / f"{name}.wav", at)
                                            .as_uri(), available_range=TR(RT(0, rate),
                                                                          RT(59, rate)))
        return otio.schema.Clip(name=name, media_reference=ref,
                                source_range=TR(RT(start, rate), RT(duration, rate)))

    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    a1.append(audio_clip("one", 0.5, 0, 30))
    a2 = otio.schema.Track(name="A2", kind=otio.schema.TrackKind.Audio)
    a2.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(20, rate))))
    nest = otio.schema.Stack(name="nest", source_range=TR(RT(3, rate), RT(40, rate)))
    for name, at in (("two", 0.25), ("three", 0.75)):
        inner = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
        inner.append(audio_clip(name, at, 0, 50))
        nest.append(inner)
    a2.append(nest)
    a3 = otio.schema.Track(name="A3", kind=otio.schema.TrackKind.Audio)
    a3.append(audio_clip("muted", 0.1, 0, 30))
    a3.enabled = False
    document = tmp_path / "sound.mlt"
    document.write_text(to_mlt_xml(otio.schema.Timeline(name="s", tracks=[a1, a2, a3])))
    rendered = read_mono(render(document, tmp_path / "sound.wav", "video_off=1", "ar=48000",
                                "ac=1", "acodec=pcm_s16le"))
    onsets = np.flatnonzero(np.diff((np.abs(rendered) > 0.1).astype(int)) == 1) + 1
    # both tracks of the stack are heard, the disabled track is not; the stack starts at record
    # 20 frames, trimmed 3 frames in. Within a frame: MLT 7.12 starts a file a few hundred samples
    # early at some small in-points (here 709 samples, 15 ms, at in=3 frames; exact from about
    # in=12 on), its own seeking, the same in Shotcut
    shift = (20 - 3) * 1001 / 30000
    assert onsets / 48000 == pytest.approx([0.5, shift + 0.25, shift + 0.75], abs=1001 / 30000)


def test_a_fade_in_from_black_at_the_head_of_a_track(tmp_path):
    movie = make_video(tmp_path / "index.mp4", frames=60, width=64, height=64, gop=1)
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    v1.append(otio.schema.Transition(in_offset=RT(0, RATE), out_offset=RT(4, RATE)))
    v1.append(otio.schema.Clip(name="A", media_reference=otio.schema.ExternalReference(
        target_url=str(movie)), source_range=TR(RT(10, RATE), RT(20, RATE))))
    document = tmp_path / "fade.mlt"
    document.write_text(to_mlt_xml(otio.schema.Timeline(name="f", tracks=[v1]), width=64,
                                   height=64))
    rendered = render(document, tmp_path / "fade.mkv", "vcodec=ffv1", "an=1")
    with av.open(str(rendered)) as container:
        images = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(images) == 20
    assert images[0].mean() < 20  # black, then A rising out of it
    assert [read_index(image) for image in images[4:]] == list(range(14, 30))
