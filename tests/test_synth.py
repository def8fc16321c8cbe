"""The procedural Foley world: determinism, event rules, synchronised sound and picture, files."""
from __future__ import annotations

import json
import wave
from fractions import Fraction

import numpy as np
import pytest

from engine.media.decode import probe
from trainer.data.windows import decode_audio
from engine.analysis.onsets import detect_onsets, match_onsets
from trainer.synth.audio import SAMPLE_RATE, synthesize
from trainer.synth.scene import CLASSES, CLASS_NAMES, FRAME_RATES, sample_scene
from trainer.synth.video import APPROACH, REBOUND, render_frame
from trainer.synth.writer import load_events, write_scene


def test_scenes_are_determined_by_namespace_and_seed():
    a, b = sample_scene(5), sample_scene(5)
    assert a == b
    assert sample_scene(5, namespace="eval:5") != a
    assert sample_scene(6) != a


def test_event_rules_hold_for_every_class_and_all_classes_and_rates_occur():
    seen_classes, seen_rates = set(), set()
    for seed in range(300):
        scene = sample_scene(seed)
        cls = CLASSES[CLASS_NAMES.index(scene.sound_class)]
        seen_classes.add(scene.sound_class)
        seen_rates.add(scene.fps)
        events = np.array(scene.events)
        assert cls.events[0] <= len(events) <= cls.events[1]
        assert events[0] >= 0.45 - 1e-9 and events[-1] <= scene.duration - 0.25 + 1e-9
        assert np.all(np.diff(events) >= cls.min_gap - 1e-9)
        assert "{count}" not in scene.caption
    assert seen_classes == set(CLASS_NAMES) and len(CLASS_NAMES) >= 8
    assert seen_rates == set(FRAME_RATES)


@pytest.mark.parametrize("sound_class", CLASS_NAMES)
def test_each_sound_starts_at_its_events_and_nowhere_else(sound_class):
    for seed in range(3):
        scene = sample_scene(seed, sound_class=sound_class)
        audio = synthesize(scene)
        assert audio.shape == (round(scene.duration * SAMPLE_RATE),) and audio.dtype == np.float32
        assert np.abs(audio).max() <= 1.0
        score = match_onsets(scene.events, detect_onsets(audio, SAMPLE_RATE))
        assert score.hits == score.reference == score.detected, (scene.events, score)
        assert max(abs(o) for o in score.offsets) < 0.02


@pytest.mark.parametrize("sound_class", ["metal", "clap", "door", "drip"])
def test_the_picture_moves_only_around_contacts(sound_class):
    scene = sample_scene(1, sound_class=sound_class)
    events = scene.events
    quiet = [t for t in np.arange(0, scene.duration, 0.02)
             if all(t < e - APPROACH * 1.6 or t > e + REBOUND + 0.45 for e in events)]
    assert quiet, "no resting time in this scene"
    rest = render_frame(scene, quiet[0])
    for t in quiet[1:]:
        assert np.array_equal(render_frame(scene, t), rest), t
    for e in events:  # the last moments of the approach are visibly different
        before = render_frame(scene, e - 0.1).astype(int)
        at = render_frame(scene, e).astype(int)
        assert np.abs(before - at).mean() > 0.1


def test_written_scene_has_aligned_lossless_sound_exact_rate_and_its_events(tmp_path):
    scene = sample_scene(11, sound_class="clap")
    paths = write_scene(scene, tmp_path)
    info = probe(paths["video"])
    assert info.has_video and info.has_audio and info.frame_rate == scene.fps
    assert abs(float(info.duration) - scene.duration) < 2 / float(scene.fps)
    with wave.open(str(paths["audio"])) as fh:
        assert fh.getframerate() == SAMPLE_RATE and fh.getsampwidth() == 2
        reference = np.frombuffer(fh.readframes(fh.getnframes()), "<i2") / 32767
    from_movie = decode_audio(paths["video"], SAMPLE_RATE)
    assert len(from_movie) == len(reference)
    assert np.abs(from_movie - reference).max() < 1e-4  # ALAC: lossless and no encoder delay
    data = load_events(paths["events"])
    assert data["event_times"] == [round(t, 6) for t in scene.events]
    assert data["fps"] == scene.fps and data["sound_class"] == "clap"
    assert paths["caption"].read_text().strip() == scene.caption
    before = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    write_scene(scene, tmp_path)  # a finished scene is kept: interrupted runs resume
    assert {k: p.stat().st_mtime_ns for k, p in paths.items()} == before
    assert json.loads(paths["events"].read_text())["fps"] == \
        f"{scene.fps.numerator}/{scene.fps.denominator}"
    assert isinstance(data["fps"], Fraction)
