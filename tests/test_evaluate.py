"""Evaluation pieces: the Fréchet distance, the classifier file, metrics on real audio."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.classifier import AudioClassifier, load_classifier, save_classifier, train_classifier
from trainer.evaluate import SceneSet, audio_metrics, frechet_distance
from trainer.synth.audio import synthesize
from trainer.synth.scene import CLASS_NAMES, sample_scene


def test_frechet_distance_is_zero_for_equal_sets_and_the_squared_mean_shift_otherwise():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 4))
    a -= a.mean(axis=0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([3.0, 0.0, -1.0, 0.0])
    assert frechet_distance(a, a + shift) == pytest.approx(10.0, rel=1e-6)
    wider = frechet_distance(a, 2 * a)  # same mean, doubled spread: trace term (2 - 1)^2 per dim
    assert wider == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-6)


def test_classifier_round_trips_through_its_file(tmp_path):
    torch.manual_seed(0)
    model = AudioClassifier(("a", "b", "c")).eval()
    path = save_classifier(model, tmp_path / "c.safetensors", provenance={"steps": 0})
    again = load_classifier(path)
    wave = torch.randn(2, 16000) * 0.1
    assert again.classes == ("a", "b", "c")
    assert torch.equal(model(wave), again(wave))
    with pytest.raises(FileNotFoundError, match="classifier is missing"):
        load_classifier(tmp_path / "none.safetensors")


def test_a_briefly_trained_classifier_separates_two_classes():
    scenes = [sample_scene(i, sound_class=c) for i in range(12) for c in ("metal", "clap")]
    waves = torch.from_numpy(np.stack([synthesize(s) for s in scenes]))
    labels = torch.tensor([0 if s.sound_class == "metal" else 1 for s in scenes])
    model = train_classifier(waves, labels, ("metal", "clap"), steps=60, batch=8)
    held_out = [sample_scene(100 + i, sound_class=c) for i in range(4) for c in ("metal", "clap")]
    predicted, embedding = model.predict(torch.from_numpy(np.stack([synthesize(s) for s in held_out])))
    assert predicted.tolist() == [0, 1] * 4
    assert embedding.shape == (8, 64)


def test_real_audio_scores_perfect_onsets_and_a_shifted_copy_does_not():
    scenes = [sample_scene(i, namespace="eval:test") for i in range(6)]
    reference = torch.from_numpy(np.stack([synthesize(s) for s in scenes]))
    scene_set = SceneSet(scenes=scenes, features=[], reference=reference, seed=0)
    classifier = AudioClassifier(CLASS_NAMES).eval()
    real = audio_metrics(reference, scene_set, classifier, sample_rate=16000)
    assert real["onset_f1"] == 1.0 and real["onset_offset_ms"] < 20
    assert real["frechet_distance"] == pytest.approx(0.0, abs=1e-3)
    late = torch.roll(reference, 1600, dims=1)  # 100 ms late: every onset misses the ±50 ms
    shifted = audio_metrics(late, scene_set, classifier, sample_rate=16000)
    assert shifted["onset_f1"] == 0.0
    assert 0 <= shifted["clipping_fraction"] < 1e-3 and shifted["loudness_lufs_mean"] < 0


class _IdentityCodec:
    """A codec that hands the audio back untouched, and a 'vocoder' that loses the partials
    (noise with the mel's loudness): the stages must tell them apart."""
    sampling_rate = 16000

    def __init__(self):
        from engine.codec.mel import MEL_16K, MelConverter
        self.mel = MelConverter(MEL_16K)
        self.vae = None
        self._audio = {}

    def vocoder(self, mel):
        level = 10 ** mel.mean(dim=1)  # (B, frames) linear level per frame
        envelope = torch.repeat_interleave(level, 256, dim=1)
        noise = torch.randn(envelope.shape, generator=torch.Generator().manual_seed(0))
        return (0.05 * noise * envelope / envelope.amax(dim=1, keepdim=True)).unsqueeze(1)

    def encode(self, wave):
        class Posterior:
            mean = wave
        return Posterior()

    def decode(self, latent):
        return latent


def test_codec_stages_separate_a_lossless_codec_from_a_vocoder_that_loses_partials():
    from trainer.evaluate import codec_stages
    scenes = [sample_scene(i, namespace="eval:stages", sound_class=c)
              for i, c in enumerate(("metal", "glass", "clap", "metal"))]
    reference = torch.from_numpy(np.stack([synthesize(s) for s in scenes]))
    scene_set = SceneSet(scenes=scenes, features=[], reference=reference, seed=0)

    class Pipeline:
        codec, sample_rate = _IdentityCodec(), 16000
    classifier = AudioClassifier(CLASS_NAMES).eval()
    stages = codec_stages(Pipeline(), scene_set, classifier, generated=reference.clone())
    assert list(stages) == ["real", "vocoder", "codec_round_trip", "generated"]
    assert stages["codec_round_trip"]["ringing_tonality_vs_real_db"] == 0.0
    assert stages["generated"]["per_class"] == stages["real"]["per_class"]
    assert stages["vocoder"]["ringing_tonality_vs_real_db"] < -20.0  # partials gone
    assert stages["real"]["per_class"]["metal"]["tonality_db"] > 40.0
    floor = stages["codec_round_trip"]["stft_vs_floor"]
    assert set(floor) == {"metal", "glass", "clap"}
    assert all(v["distance"] < 1e-4 < v["floor"] for v in floor.values())  # lossless: under it
    assert all(v["distance"] > v["floor"] for v in stages["vocoder"]["stft_vs_floor"].values())


def test_the_classifier_learns_from_real_audio_only(monkeypatch):
    """No codec output goes in (issue 14): every batch the classifier trains on is rows of the
    real clips it was given, through the generic nuisances only; the shipped classifier's
    provenance says so."""
    import trainer.classifier as classifier_module
    from safetensors import safe_open
    from trainer.classifier import CLASSIFIER_PATH
    waves = torch.stack([torch.full((8000,), float(i + 1) / 10) for i in range(4)])
    seen = []
    real_nuisance = classifier_module.nuisance

    def recording(batch, gen):
        seen.append(batch.clone())
        return real_nuisance(batch, gen)
    monkeypatch.setattr(classifier_module, "nuisance", recording)
    train_classifier(waves, torch.tensor([0, 1, 0, 1]), ("metal", "clap"), steps=3, batch=4)
    assert len(seen) == 3
    for batch in seen:  # each row is one of the given clips, untouched before the nuisances
        assert all(any(torch.equal(row, w) for w in waves) for row in batch)
    with safe_open(str(CLASSIFIER_PATH), framework="pt") as fh:
        assert "real audio only" in fh.metadata()["provenance"]


@pytest.mark.slow
def test_the_gate_only_report_of_the_shipped_bundle(tmp_path):
    """`trainer.experiments --gate-only`: the go / no-go on a new bundle, on the shipped starter
    bundle and 3 unseen scenes: the gate, the round trip and the codec stages, no grids, and the
    card's markdown renders from it."""
    from engine.paths import starter_bundle_dir
    from trainer.experiments import main
    out = tmp_path / "gate.json"
    assert main(["--bundle", str(starter_bundle_dir()), "--scenes", "3", "--seed", "5",
                 "--out", str(out), "--gate-only"]) == 0
    import json
    report = json.loads(out.read_text())
    assert {"gate", "codec_round_trip", "stages", "threshold_sensitivity"} <= set(report)
    assert not {"steps", "guidance", "shuffled_video", "with_caption"} & set(report)
    assert list(report["stages"]) == ["real", "vocoder", "codec_round_trip", "generated"]
    assert report["stages"]["real"]["class_accuracy"] == 1.0  # the evaluator on real audio
    text = out.with_suffix(".md").read_text()
    assert "Gate (one step, defaults)" in text and "Codec stages" in text
    assert "(a) Steps" not in text
