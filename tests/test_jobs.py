"""The engine seam (issue 15): `generate_takes` generates, writes and describes takes for every
front end; a cancel lands within 100 ms at any stage and leaves no file; one provenance key set;
user errors carry the field at fault and no flag; internal bugs are not dressed up as user errors;
the naming module stays pure Python."""
import json
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from engine.cancel import Cancelled, CancelToken, Progress
from engine.errors import UserError
from engine.jobs import TakeRequest, generate_takes
from engine.media.bwf import read_bwf
from engine.media.decode import decode_frames
from engine.pipeline import FoleyPipeline
from tests.test_pipeline import bundle, movie  # noqa: F401  (fixtures)

CANCEL_WITHIN = 0.1  # seconds (issue 15)


@pytest.fixture(scope="module")
def pipeline(bundle):  # noqa: F811
    return FoleyPipeline(bundle)


def _request(movie, folder, **changes):  # noqa: F811
    base = dict(media=movie, out=folder, start=Fraction(1, 2), end=Fraction(5, 2), seed=3,
                prompt="hands clapping")
    return TakeRequest(**{**base, **changes})


def test_generate_takes_writes_the_takes_and_reports_them(pipeline, movie, tmp_path):  # noqa: F811
    events = []
    report = generate_takes(_request(movie, tmp_path, takes=2), pipeline=pipeline,
                            progress=events.append)
    as_json = report.to_json()
    assert [Path(p).name for p in as_json["takes"]] == [f"{movie.stem}_foley_take{k}_v001.wav"
                                                        for k in (1, 2)]
    assert Path(as_json["preview"]).name == f"{movie.stem}_foley_preview_v001.mov"
    assert as_json["range"] == [0.5, 2.5]
    assert [d["seed"] for d in as_json["take_details"]] == [3, 4]
    assert set(as_json["provenance"]) == {"bundle", "network_sha256", "codec_version", "guidance",
                                          "mode", "steps", "seed", "prompt", "negative_prompt",
                                          "codec_partial_contrast"}
    assert as_json["provenance"]["network_sha256"] == pipeline.bundle.network_sha256
    # the WAV carries the same provenance in its BWF note
    from xml.etree import ElementTree
    note = ElementTree.fromstring(read_bwf(report.takes[0].path).ixml).findtext("NOTE")
    assert json.loads(note) == as_json["provenance"]
    # the stages come in order and each ends complete
    stages = [e.stage for e in events]
    assert sorted(set(stages), key=stages.index) == ["features", "sampling", "decoding", "writing"]
    assert events[-1] == Progress("writing", 2, 2)
    json.dumps(as_json)  # plain JSON


def test_the_timeline_and_the_generate_reports_share_one_provenance_key_set(
        pipeline, movie, tmp_path):  # noqa: F811
    """Issue 15: `network_sha256` in one report, `model_sha256` in the other."""
    from mfmjt_plugin.timeline.foley import FoleySettings, make_foley
    from mfmjt_plugin.timeline.selection import Selection
    import opentimelineio as otio
    generated = generate_takes(_request(movie, tmp_path / "g"), pipeline=pipeline).provenance
    # a one-clip OTIO timeline of the movie, through the bridge
    rate = 24
    clip = otio.schema.Clip(name="shot", media_reference=otio.schema.ExternalReference(
        target_url=movie.resolve().as_uri(),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                otio.opentime.RationalTime(72, rate))),
        source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(12, rate),
                                             otio.opentime.RationalTime(48, rate)))
    timeline = otio.schema.Timeline(name="reel")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    track.append(clip)
    timeline.tracks.append(track)
    path = tmp_path / "reel.otio"
    otio.adapters.write_to_file(timeline, str(path))
    report = make_foley(path, Selection(clip="shot"), FoleySettings(bundle=str(pipeline.bundle.path)),
                        out_dir=tmp_path / "t", timeline_dir=tmp_path)
    placed = otio.adapters.read_from_file(report["timeline"])
    metadata = [dict(c.metadata["mfmjt"]) for c in placed.find_clips() if "mfmjt" in c.metadata]
    assert metadata
    assert set(generated) <= set(metadata[0])
    assert "model_sha256" not in metadata[0]
    assert set(metadata[0]) - set(generated) == {"version", "source_clip", "take", "take_seed",
                                                 "sync_score"}
    assert metadata[0]["network_sha256"] == generated["network_sha256"]


def _cancel_during(stage_reached: threading.Event, token: CancelToken, run) -> float:
    """Run `run()` in a thread, cancel once `stage_reached` is set; seconds from cancel() to the
    Cancelled exception."""
    outcome = {}

    def target():
        try:
            run()
            outcome["result"] = "finished"
        except Cancelled:
            outcome["cancelled_at"] = time.perf_counter()
        except BaseException as err:  # noqa: BLE001  (reported below)
            outcome["error"] = err
    thread = threading.Thread(target=target)
    thread.start()
    assert stage_reached.wait(60), "the stage was never reached"
    cancelled = time.perf_counter()
    token.cancel()
    thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert "cancelled_at" in outcome, f"not cancelled: {outcome}"
    return outcome["cancelled_at"] - cancelled


def test_a_cancel_while_the_picture_decodes_lands_within_100_ms(bundle, movie, tmp_path):  # noqa: F811
    """A slow decoder (80 ms a frame, as a 4K ProRes can be): the cancel reaches it between
    frames, through the pipeline's own cancel plumbing."""
    reached = threading.Event()

    def slow_decoder(media, start, duration, specs, *, cancel=None):
        def frame_cancel():
            reached.set()
            time.sleep(0.08)
            return cancel is not None and cancel()
        return decode_frames(media, start, duration, specs, cancel=frame_cancel)
    pipeline = FoleyPipeline(bundle, frame_decoder=slow_decoder)
    token = CancelToken()
    delay = _cancel_during(reached, token, lambda: generate_takes(
        _request(movie, tmp_path), pipeline=pipeline, cancel=token))
    assert delay <= CANCEL_WITHIN
    assert list(tmp_path.iterdir()) == []


def test_a_cancel_while_sampling_lands_within_100_ms(pipeline, movie, tmp_path):  # noqa: F811
    reached = threading.Event()
    token = CancelToken()

    def progress(event):
        if event.stage == "sampling" and event.done >= 2:
            reached.set()
    delay = _cancel_during(reached, token, lambda: generate_takes(
        _request(movie, tmp_path, steps=400), pipeline=pipeline, cancel=token, progress=progress))
    assert delay <= CANCEL_WITHIN
    assert list(tmp_path.iterdir()) == []


def test_a_cancel_while_decoding_latents_lands_within_100_ms(bundle, movie, tmp_path):  # noqa: F811
    """Decoding the latents is the slow part of a one-step request: each take is decoded on its
    own (a fake codec here, 60 ms a take, 8 candidates) and the cancel lands between two."""
    pipeline = FoleyPipeline(bundle)
    reached = threading.Event()

    def slow_decode(latents, *args):
        reached.set()
        time.sleep(0.06)
        return torch.zeros(latents.shape[0], latents.shape[1] * 512)
    pipeline.decode = slow_decode
    token = CancelToken()
    delay = _cancel_during(reached, token, lambda: generate_takes(
        _request(movie, tmp_path, takes=8), pipeline=pipeline, cancel=token))
    assert delay <= CANCEL_WITHIN
    assert list(tmp_path.iterdir()) == []


def test_a_cancel_while_writing_removes_what_was_written(pipeline, movie, tmp_path):  # noqa: F811
    token = CancelToken()
    from engine import deliver
    original = deliver.write_bwf
    written = []

    def write_then_cancel(path, *args, **kwargs):
        result = original(path, *args, **kwargs)
        written.append(result)
        token.cancel()  # after the first take is on disk
        return result
    deliver.write_bwf = write_then_cancel
    try:
        with pytest.raises(Cancelled):
            generate_takes(_request(movie, tmp_path, takes=3), pipeline=pipeline, cancel=token)
    finally:
        deliver.write_bwf = original
    assert len(written) == 1 and not written[0].exists()
    assert list(tmp_path.iterdir()) == []


def test_user_errors_name_the_field_not_a_flag(pipeline, movie, tmp_path):  # noqa: F811
    taken = tmp_path / "takes.wav"
    taken.write_bytes(b"mine")
    cases = [(dict(out=taken), "out", "is a file, not a folder"),
             (dict(takes=3, best_of=2), "best_of", "fewer than the 3 takes"),
             # a client's key that would overwrite the engine's record of how the take was made
             (dict(extra_provenance={"shot": "12A", "seed": 3, "guidance": 9}),
              "extra_provenance", "'seed', 'guidance': the engine records that itself"),
             (dict(steps=0), "steps", "steps must be from 1"),
             (dict(guidance=float("nan")), "guidance", "finite"),
             (dict(media=tmp_path / "missing.mp4"), "media", "missing.mp4"),
             (dict(end=Fraction(60)), "media", "past the end of the media")]
    for changes, field, words in cases:
        with pytest.raises(UserError) as raised:
            generate_takes(_request(movie, tmp_path / "out", **changes), pipeline=pipeline)
        assert raised.value.field == field and words in str(raised.value)
        assert "--" not in str(raised.value)  # no command-line flag in the library's words
    assert taken.read_bytes() == b"mine" and not (tmp_path / "out").exists()


def test_an_internal_bug_is_not_reported_as_a_user_error(movie, tmp_path, monkeypatch):  # noqa: F811
    """The CLI catches user errors only: a bug shows its traceback (here, as the exception
    escaping `main`), never a tidy one-line 'error:'."""
    from mfmjt_plugin.cli import main

    def broken(request, **kwargs):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr("engine.jobs.generate_takes", broken)
    with pytest.raises(ZeroDivisionError):
        main(["generate", str(movie), "--out", str(tmp_path)])


def test_the_naming_module_imports_the_standard_library_only():
    code = ("import sys; import engine.naming as n; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'numpy', 'opentimelineio', 'av', 'safetensors', 'PyQt6')); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_names_versions_and_handles(tmp_path):
    from engine.naming import (handles, next_generation_version, next_version, take_path,
                               timeline_take_paths, timeline_take_stem)
    (tmp_path / "cam_foley_take1_v004.wav").write_bytes(b"")
    (tmp_path / "cam_foley_preview_v006.mov").write_bytes(b"")
    assert next_generation_version(tmp_path, "cam_foley", 2) == 7  # takes and preview share NNN
    assert take_path(tmp_path, "cam_foley", 2, 7).name == "cam_foley_take2_v007.wav"
    # a clip name with glob characters is a literal, not a pattern
    (tmp_path / "[B]_v002.wav").write_bytes(b"")
    (tmp_path / "B_v009.wav").write_bytes(b"")
    assert next_version(tmp_path, "[B]") == 3
    stem = timeline_take_stem("Reel 1", "A001_C002.mov", "glass clink")
    assert stem == "Reel-1_A001-C002_FOLEY_glass-clink"
    assert timeline_take_paths(tmp_path, stem, 2)[1][1].name == f"{stem}_v001_t02.wav"
    # 30 frames of head at 59.94 are 0.5005 s; a float product would give 29 frames
    rate = Fraction(60000, 1001)
    frames, head, tail = handles(Fraction(1001, 2000), Fraction(2), Fraction(10), Fraction(5), rate)
    assert (frames, head) == (30, Fraction(1001, 2000))
    assert tail == Fraction(1)
    # at the timeline's start no head; at the media's end no tail
    assert handles(Fraction(3), Fraction(2), Fraction(5), Fraction(0), rate)[:2] == (0, 0)
    assert handles(Fraction(3), Fraction(2), Fraction(5), Fraction(9), rate)[2] == 0


def test_the_codec_decode_polls_the_cancel_between_vae_and_vocoder(pipeline):
    latents = torch.zeros(1, 62, pipeline.network.config.latent_dim)
    calls = []

    def cancel_after_vae():
        calls.append(1)
        return True
    with pytest.raises(Cancelled, match="decoding the latents"):
        pipeline.decode(latents, cancel_after_vae)
    assert calls == [1]
    assert pipeline.decode(latents, lambda: False).shape == (1, 62 * 512)
