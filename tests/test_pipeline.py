"""FoleyPipeline and take delivery on a small bundle with the starter stack (random weights)."""
from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pytest
import torch

from engine.bundles import save_bundle
from engine.bundles.components import STARTER_CODEC_FILE, starter_descriptors
from engine.cancel import Cancelled
from engine.codec.starter import StarterCodec
from engine.deliver import write_takes
from engine.media.bwf import OUTPUT_RATE, frame_exact_length, read_bwf
from engine.media.decode import probe
from engine.media.errors import MediaError
from engine.model import build_network
from engine.pipeline import FoleyPipeline, GenerateRequest, crossfade, window_starts
from tests.conftest import randomize
from trainer.synth.scene import sample_scene
from trainer.synth.writer import write_scene


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    network = randomize(build_network("tiny", clip_dim=64, sync_dim=72, text_dim=64,
                                      text_seq_len=16, training_duration=2.0), keep_delta_zero=False)
    codec, encoders = starter_descriptors(20251123)
    torch.manual_seed(1)
    state = StarterCodec().state_dict()
    return save_bundle(tmp_path_factory.mktemp("b") / "small", network, preset="tiny",
                       codec=codec, encoders=encoders, extra={STARTER_CODEC_FILE: state},
                       defaults={"guidance": 2.0, "mode": "scaled", "steps": 1})


@pytest.fixture(scope="module")
def pipeline(bundle):
    return FoleyPipeline(bundle)


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    scene = sample_scene(2, namespace="test", duration=3.0, sound_class="clap")
    return write_scene(scene, tmp_path_factory.mktemp("m"))["video"]


def digest(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest()


def test_window_starts_cover_the_range_and_end_at_its_end():
    assert window_starts(1.5, 2.0) == [0.0]
    assert window_starts(2.0, 2.0) == [0.0]
    assert window_starts(3.0, 2.0) == [0.0, 1.0]
    starts = window_starts(7.3, 2.0, overlap=0.5)
    assert starts[0] == 0.0 and starts[-1] == pytest.approx(5.3)
    assert all(b - a <= 1.5 + 1e-9 for a, b in zip(starts, starts[1:]))


def test_crossfade_is_equal_power_and_keeps_the_length():
    a, b = np.full(100, 0.5, np.float32), np.full(100, 0.25, np.float32)
    out = crossfade([a, b], [0, 60], 160)
    assert out.shape == (160,)
    assert np.all(out[:60] == 0.5) and np.all(out[100:] == 0.25)  # untouched outside the overlap
    w_in = crossfade([np.zeros(100, np.float32), np.ones(100, np.float32)], [0, 60], 160)[60:100]
    w_out = crossfade([np.ones(100, np.float32), np.zeros(100, np.float32)], [0, 60], 160)[60:100]
    assert np.allclose(w_in ** 2 + w_out ** 2, 1.0, atol=1e-6)  # equal power
    assert np.all(np.diff(w_in) > 0) and np.allclose(w_in, w_out[::-1])
    rng = np.random.default_rng(0)  # uncorrelated windows keep their level through the overlap
    noise = [rng.standard_normal(40000).astype(np.float32) for _ in range(2)]
    mixed = crossfade(noise, [0, 20000], 60000)
    assert abs(mixed[20000:40000].std() / mixed[:20000].std() - 1) < 0.03


def test_bundle_defaults_apply_unless_the_request_overrides(pipeline):
    assert pipeline.settings(GenerateRequest(media=None)) == \
        {"guidance": 2.0, "mode": "scaled", "steps": 1}
    assert pipeline.settings(GenerateRequest(media=None, guidance=3.5, mode="standard",
                                             steps=4)) == \
        {"guidance": 3.5, "mode": "standard", "steps": 4}
    with pytest.raises(ValueError, match="guidance mode 'cfg'"):
        pipeline.settings(GenerateRequest(media=None, mode="cfg"))


def test_takes_have_the_exact_length_and_depend_only_on_the_seed(pipeline, movie):
    request = GenerateRequest(media=movie, start=Fraction(1, 2), end=Fraction(5, 2), seed=7,
                              takes=2)
    first = pipeline.generate(request)
    again = pipeline.generate(request)
    assert [t.seed for t in first.takes] == [7, 8]
    for take in first.takes:
        assert take.audio.shape == (2 * 16000,) and take.sample_rate == 16000
        assert np.isfinite(take.audio).all()
    assert digest(first.takes[0].audio) == digest(again.takes[0].audio)
    assert digest(first.takes[0].audio) != digest(first.takes[1].audio)
    alone = pipeline.generate(GenerateRequest(media=movie, start=Fraction(1, 2),
                                              end=Fraction(5, 2), seed=8))
    # take k is seed + k whatever the batch (to float rounding: batched kernels differ)
    assert np.allclose(alone.takes[0].audio, first.takes[1].audio, atol=1e-5)


def test_a_range_longer_than_the_window_is_generated_in_crossfaded_windows(pipeline, movie):
    events = []
    result = pipeline.generate(GenerateRequest(media=movie, seed=1, steps=2), progress=events.append)
    assert result.duration == probe(movie).duration
    assert result.takes[0].audio.shape == (round(float(result.duration) * 16000),)
    # two windows: their pictures, then per window two steps and its decode, in order
    assert [(e.stage, e.done, e.total) for e in events] == [
        ("features", 0, 2), ("features", 1, 2), ("features", 2, 2),
        ("sampling", 0, 4), ("sampling", 1, 4), ("sampling", 2, 4), ("decoding", 0, 2),
        ("sampling", 2, 4), ("sampling", 3, 4), ("sampling", 4, 4), ("decoding", 1, 2),
        ("decoding", 2, 2)]


def test_bad_ranges_and_cancel_are_reported(pipeline, movie, tmp_path):
    with pytest.raises(MediaError, match="shorter than the model's minimum"):
        pipeline.generate(GenerateRequest(media=movie, start=Fraction(1), end=Fraction(13, 10)))
    with pytest.raises(Cancelled):
        pipeline.generate(GenerateRequest(media=movie), cancel=lambda: True)
    with pytest.raises(MediaError):
        pipeline.generate(GenerateRequest(media=tmp_path / "missing.mp4"))


def test_delivered_takes_are_frame_exact_bwf_under_new_versions(pipeline, movie, tmp_path):
    request = GenerateRequest(media=movie, start=Fraction(1, 2), end=Fraction(5, 2), seed=3,
                              prompt="hands clapping")
    result = pipeline.generate(request)
    first = write_takes(result, request, tmp_path, provenance={"bundle": "small"})
    second = write_takes(result, request, tmp_path, preview=False)
    assert [p.name for p in first.takes] == [f"{movie.stem}_foley_take1_v001.wav"]
    assert [p.name for p in second.takes] == [f"{movie.stem}_foley_take1_v002.wav"]
    assert first.preview.name == f"{movie.stem}_foley_preview_v001.mov"
    bwf = read_bwf(first.takes[0])
    rate = probe(movie).frame_rate
    assert bwf.sample_rate == OUTPUT_RATE and bwf.bit_depth == 24
    # padded to whole frames of the movie's rate (2 s at 30000/1001 is 59.94 -> 60 frames)
    assert bwf.samples.shape[1] == frame_exact_length(2 * OUTPUT_RATE, rate)
    assert (Fraction(bwf.samples.shape[1], OUTPUT_RATE) * rate).denominator == 1
    assert bwf.bext["time_reference"] == OUTPUT_RATE // 2
    assert "scaled w=2 steps=1 seed=3" in bwf.bext["description"]
    assert "hands clapping" in bwf.bext["description"]
    preview = probe(first.preview)
    assert preview.has_audio and abs(float(preview.duration) - 2.0) < 0.05


def test_best_of_keeps_the_best_synchronised_candidates_with_their_seeds(pipeline, movie,
                                                                       monkeypatch):
    import engine.pipeline as pipeline_module
    from engine.analysis.sync import sync_score
    from engine.pipeline import picture_onsets
    real_score = pipeline_module.sync_score
    assert 0.0 <= real_score(np.zeros(16000, np.float32), 16000, np.array([0.5])) <= 1.0
    # an untrained network's takes may all score alike: give each candidate a distinct score
    # from its sound, so the ranking is really exercised
    monkeypatch.setattr(pipeline_module, "sync_score",
                        lambda wave, rate, picture: round(float(np.abs(wave).sum()) % 1.0, 4))
    request = GenerateRequest(media=movie, end=Fraction(2), seed=7, takes=2, best_of=4)
    result = pipeline.generate(request)
    all_four = pipeline.generate(GenerateRequest(media=movie, end=Fraction(2), seed=7, takes=4))
    scores = {t.seed: t.sync_score for t in all_four.takes}
    assert len(set(scores.values())) == 4 and all(0.0 <= s <= 1.0 for s in scores.values())
    ranked = sorted(scores, key=lambda seed: -scores[seed])[:2]
    assert [t.seed for t in result.takes] == ranked and [t.index for t in result.takes] == [1, 2]
    assert result.settings["best_of"] == 4
    for take in result.takes:  # the kept takes are exactly those candidates, score and sound
        twin = next(t for t in all_four.takes if t.seed == take.seed)
        assert np.array_equal(take.audio, twin.audio) and take.sync_score == twin.sync_score
    monkeypatch.setattr(pipeline_module, "sync_score", real_score)
    plain = pipeline.generate(GenerateRequest(media=movie, end=Fraction(2), seed=7))
    features = [pipeline.video_features(movie, Fraction(0), Fraction(2))]
    picture = picture_onsets(features, [0.0], 25.0)
    assert plain.takes[0].sync_score == sync_score(plain.takes[0].audio, pipeline.sample_rate,
                                                   picture)
    with pytest.raises(ValueError, match="best-of must be from the number of takes"):
        pipeline.settings(GenerateRequest(media=movie, takes=3, best_of=2))


def test_a_bundle_whose_codec_and_network_disagree_is_refused(tmp_path):
    from engine.bundles import BundleError
    network = build_network("tiny", clip_dim=64, sync_dim=72, text_dim=64, text_seq_len=16,
                            training_duration=2.0)
    codec, encoders = starter_descriptors(20251123)
    old = save_bundle(tmp_path / "v1-codec-in-v2-manifest", network, preset="tiny", codec=codec,
                      encoders=encoders, extra={STARTER_CODEC_FILE: StarterCodec(1).state_dict()})
    with pytest.raises(BundleError, match="does not match codec version 2.*re-export"):
        FoleyPipeline(old)
    future = save_bundle(tmp_path / "future", network, preset="tiny",
                         codec={**codec, "version": 7}, encoders=encoders,
                         extra={STARTER_CODEC_FILE: StarterCodec().state_dict()})
    with pytest.raises(BundleError, match="version 7 is newer than this engine knows"):
        FoleyPipeline(future)


def test_a_bundle_made_with_the_first_starter_codec_still_generates(tmp_path, movie):
    """Bundles exported before codec versions were recorded (no `version`: codec v1, 8 latent
    channels, BigVGAN vocoder) load and generate as they did."""
    torch.manual_seed(3)
    network = randomize(build_network("tiny", latent_dim=8, clip_dim=64, sync_dim=72,
                                      text_dim=64, text_seq_len=16, training_duration=2.0),
                        keep_delta_zero=False)
    codec, encoders = starter_descriptors(20251123)
    codec = {k: v for k, v in codec.items() if k not in ("version", "mel_noise")}
    old = save_bundle(tmp_path / "old", network, preset="tiny", codec=codec, encoders=encoders,
                      extra={STARTER_CODEC_FILE: StarterCodec(1).state_dict()})
    old_pipeline = FoleyPipeline(old)
    assert old_pipeline.codec.version == 1
    take = old_pipeline.generate(GenerateRequest(media=movie, end=Fraction(1))).takes[0]
    assert take.audio.shape == (16000,) and np.isfinite(take.audio).all()


def test_the_codec_texture_comes_from_the_manifest_and_each_take_has_its_own(tmp_path, movie):
    torch.manual_seed(0)
    network = randomize(build_network("tiny", clip_dim=64, sync_dim=72, text_dim=64,
                                      text_seq_len=16, training_duration=2.0), keep_delta_zero=False)
    codec, encoders = starter_descriptors(20251123, mel_noise=0.15)
    state = StarterCodec().state_dict()
    textured = FoleyPipeline(save_bundle(tmp_path / "textured", network, preset="tiny",
                                         codec=codec, encoders=encoders,
                                         extra={STARTER_CODEC_FILE: state}))
    assert textured.codec.mel_noise == 0.15
    request = GenerateRequest(media=movie, end=Fraction(2), seed=5, takes=2)
    first, again = textured.generate(request), textured.generate(request)
    assert np.array_equal(first.takes[0].audio, again.takes[0].audio)  # a seed is a take
    alone = textured.generate(GenerateRequest(media=movie, end=Fraction(2), seed=6))
    assert np.allclose(alone.takes[0].audio, first.takes[1].audio, atol=1e-5)  # take k: seed + k
    for bad in (-0.1, 3.0):
        broken = save_bundle(tmp_path / f"bad{bad}", network, preset="tiny",
                             codec={**codec, "mel_noise": bad}, encoders=encoders,
                             extra={STARTER_CODEC_FILE: state})
        from engine.bundles import BundleError
        with pytest.raises(BundleError, match="mel_noise .* is outside 0..1; re-export"):
            FoleyPipeline(broken)
