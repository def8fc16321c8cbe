"""Measuring what matters on synth scenes the model never saw (issue 6 §2).

Scenes come from `sample_scene(i, namespace=f"eval:{seed}")`, a namespace training never uses, so
any seed gives unseen scenes. Each is written as a real MP4 and goes through the product's path
(decode -> starter features -> network -> codec). Against each scene's event list: onset
precision / recall / F1 within ±50 ms and the mean absolute onset offset (our DeSync analogue);
the evaluator classifier's accuracy on the generated audio; the Fréchet distance between the
classifier embeddings of generated and real audio; clipping and loudness. The same numbers for the
real audio are reported as the ceiling.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pyloudnorm
import torch
from scipy import linalg

from engine.features.base import VideoFeatures
from trainer.classifier import AudioClassifier
from trainer.data.windows import decode_audio
from engine.analysis.onsets import THRESHOLD, detect_onsets, f1_of, match_onsets
from trainer.synth.audio import SAMPLE_RATE as SYNTH_RATE
from trainer.synth.audio import synthesize
from trainer.synth.scene import CLASS_NAMES, Scene, sample_scene
from trainer.synth.writer import write_scene
from trainer.timbre import event_tonality, frame_rate_comb

BATCH = 16
CLIP_LEVEL = 0.999


@dataclass
class SceneSet:
    scenes: list[Scene]
    features: list[VideoFeatures]
    reference: torch.Tensor  # (N, samples) real audio at 16 kHz
    seed: int
    # the real audio's classifier embeddings and metrics, computed once per set (a sweep
    # evaluates the same scenes dozens of times)
    reference_embedding: Optional[torch.Tensor] = None
    real_metrics: Optional[dict] = None


def prepare_scenes(pipeline, *, count: int, seed: int, workdir: Optional[Path] = None,
                   progress: Optional[Callable[[int, int], None]] = None) -> SceneSet:
    """Write `count` unseen scenes as MP4 + WAV and encode their pictures with the bundle's
    encoders (through the media decoder, like any user movie)."""
    scenes = [sample_scene(i, namespace=f"eval:{seed}") for i in range(count)]
    features, reference = [], []
    with tempfile.TemporaryDirectory(prefix="mfmjt-eval-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        for i, scene in enumerate(scenes):
            paths = write_scene(scene, root)
            features.append(pipeline.video_features(paths["video"], Fraction(0),
                                                    Fraction(scene.duration)))
            audio = decode_audio(paths["audio"], pipeline.sample_rate)
            reference.append(torch.from_numpy(audio[: round(scene.duration * pipeline.sample_rate)]))
            if progress is not None:
                progress(i + 1, count)
    return SceneSet(scenes=scenes, features=features, reference=torch.stack(reference), seed=seed)


def generate_set(pipeline, scene_set: SceneSet, settings: dict, *, shuffle_video: bool = False,
                 with_caption: bool = False) -> tuple[torch.Tensor, float]:
    """(N, samples) generated audio, one take per scene (noise from the scene index), and the
    median seconds per scene of network + codec time."""
    features = list(scene_set.features)
    if shuffle_video:  # the control: every scene gets another scene's picture
        features = features[1:] + features[:1]
    empty = pipeline.encoder.encode_text([""])
    outputs, seconds = [], []
    length = pipeline.network.config.lengths(scene_set.scenes[0].duration).latent
    for first in range(0, len(features), BATCH):
        chunk = range(first, min(first + BATCH, len(features)))
        noise = torch.cat([pipeline.noise(scene_set.seed * 7919 + i, 0, length) for i in chunk])
        text = pipeline.encoder.encode_text([scene_set.scenes[i].caption for i in chunk]) \
            if with_caption else empty
        start = time.perf_counter()
        latents = pipeline.sample_latents([features[i] for i in chunk], text, None, noise,
                                          settings)
        audio = pipeline.decode(latents)
        seconds.append((time.perf_counter() - start) / len(chunk))
        outputs.append(audio[:, : scene_set.reference.shape[1]])
    return torch.cat(outputs), float(np.median(seconds))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets (N, D)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(linalg.sqrtm(cov_a @ cov_b))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def audio_metrics(audio: torch.Tensor, scene_set: SceneSet, classifier: AudioClassifier, *,
                  sample_rate: int, threshold: float = THRESHOLD) -> dict:
    """Every metric of one set of takes (N, samples) against the scenes."""
    scores, per_class = [], defaultdict(list)
    for wave, scene in zip(audio.numpy(), scene_set.scenes):
        score = match_onsets(scene.events, detect_onsets(wave, sample_rate, threshold=threshold))
        scores.append(score)
        per_class[scene.sound_class].append(score)
    precision, recall, f1 = f1_of(scores)
    offsets = np.abs(np.concatenate([s.offsets for s in scores])) if any(s.offsets for s in scores) \
        else np.array([np.nan])
    labels = torch.tensor([s.class_index for s in scene_set.scenes])
    predicted, embedding = classifier.predict(audio)
    if scene_set.reference_embedding is None:
        scene_set.reference_embedding = classifier.predict(scene_set.reference)[1]
    meter = pyloudnorm.Meter(sample_rate)
    loudness = [meter.integrated_loudness(w.astype(np.float64)) for w in audio.numpy()]
    loudness = [v for v in loudness if np.isfinite(v)]
    correct = (predicted == labels)
    tonality = defaultdict(list)
    for wave, scene in zip(audio.numpy(), scene_set.scenes):
        tonality[scene.sound_class] += event_tonality(wave, scene.events, sample_rate)
    return {
        "onset_f1": f1, "onset_precision": precision, "onset_recall": recall,
        "onset_offset_ms": float(np.mean(offsets) * 1000),
        "class_accuracy": float(correct.float().mean()),
        "frechet_distance": frechet_distance(embedding.numpy(),
                                             scene_set.reference_embedding.numpy()),
        "clipping_fraction": float((audio.abs() >= CLIP_LEVEL).float().mean()),
        "loudness_lufs_mean": float(np.mean(loudness)) if loudness else float("-inf"),
        "silent_takes": len(audio) - len(loudness),
        "comb_db": float(np.mean([frame_rate_comb(w, sample_rate) for w in audio.numpy()])),
        "per_class": {name: {"onset_f1": round(f1_of(per_class[name])[2], 4),
                             "class_accuracy": round(float(correct[labels == i].float().mean()), 4),
                             "tonality_db": round(float(np.mean(tonality[name])), 2)
                             if tonality[name] else None}
                      for i, name in enumerate(CLASS_NAMES) if per_class[name]},
    }


def evaluate(pipeline, classifier: AudioClassifier, *, scenes: int, seed: int, settings: dict,
             shuffle_video: bool = False, with_caption: bool = False,
             scene_set: Optional[SceneSet] = None, stages: bool = False,
             progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """`stages`: also the codec stages (`codec_stages`) on the same scenes."""
    scene_set = scene_set or prepare_scenes(pipeline, count=scenes, seed=seed, progress=progress)
    audio, seconds = generate_set(pipeline, scene_set, settings, shuffle_video=shuffle_video,
                                  with_caption=with_caption)
    metrics = audio_metrics(audio, scene_set, classifier, sample_rate=pipeline.sample_rate)
    if stages:
        metrics["stages"] = codec_stages(pipeline, scene_set, classifier, generated=audio)
    if scene_set.real_metrics is None:
        scene_set.real_metrics = audio_metrics(scene_set.reference, scene_set, classifier,
                                               sample_rate=pipeline.sample_rate)
    real = scene_set.real_metrics
    metrics.update({
        "scenes": len(scene_set.scenes), "seed": seed, "settings": settings,
        "shuffle_video": shuffle_video, "with_caption": with_caption,
        "seconds_per_scene": seconds,
        "real_audio": {k: real[k] for k in ("onset_f1", "onset_offset_ms", "class_accuracy",
                                            "frechet_distance")},
    })
    return metrics


RINGING = ("metal", "glass")  # the classes whose partials the first codec lost (issue 14)
STAGE_KEYS = ("class_accuracy", "onset_f1", "comb_db")


def _stage_row(metrics: dict, real: dict) -> dict:
    """Accuracy, onsets, comb, per-class accuracy and tonality, and the ringing classes'
    tonality relative to the real audio of the same scenes."""
    row = {k: round(float(metrics[k]), 4) for k in STAGE_KEYS}
    row["per_class"] = {name: {"class_accuracy": v["class_accuracy"],
                               "tonality_db": v["tonality_db"]}
                        for name, v in metrics["per_class"].items()}
    gaps = [metrics["per_class"][c]["tonality_db"] - real["per_class"][c]["tonality_db"]
            for c in RINGING if c in metrics["per_class"]
            and metrics["per_class"][c]["tonality_db"] is not None]
    row["ringing_tonality_vs_real_db"] = round(float(np.mean(gaps)), 2) if gaps else None
    return row


def stft_floor(scene_set: SceneSet, audio: torch.Tensor) -> dict:
    """Multi-resolution STFT distance of `audio` to the real audio per class, beside the floor:
    the distance between two renderings of each scene that differ only in their noise (an
    80-band mel does not carry the exact noise, so no codec can get under that floor)."""
    from engine.codec.losses import multi_resolution_stft_loss
    out = {}
    for name in CLASS_NAMES:
        rows = [i for i, sc in enumerate(scene_set.scenes) if sc.sound_class == name]
        if not rows:
            continue
        other = torch.stack([torch.from_numpy(synthesize(dataclasses.replace(
            scene_set.scenes[i], sound={**scene_set.scenes[i].sound,
                                        "noise_seed": scene_set.scenes[i].sound["noise_seed"] + 1})))
            for i in rows])[:, : scene_set.reference.shape[1]]
        real = scene_set.reference[rows]
        out[name] = {"distance": round(float(multi_resolution_stft_loss(audio[rows], real)), 4),
                     "floor": round(float(multi_resolution_stft_loss(other, real)), 4)}
    return out


@torch.no_grad()
def codec_stages(pipeline, scene_set: SceneSet, classifier: AudioClassifier,
                 generated: Optional[torch.Tensor] = None,
                 round_trip: Optional[torch.Tensor] = None) -> dict:
    """Where timbre is kept or lost (issue 14), the same scenes at each stage: real audio, the
    vocoder alone on the real mel, the codec round trip (encode, decode; `round_trip` when the
    caller has it already), and generated takes."""
    codec, rate = pipeline.codec, pipeline.sample_rate
    n = scene_set.reference.shape[1]
    if scene_set.real_metrics is None:  # shared with `evaluate`: the same scenes, once
        scene_set.real_metrics = audio_metrics(scene_set.reference, scene_set, classifier,
                                               sample_rate=rate)
    real = scene_set.real_metrics
    stages = {"real": scene_set.reference}
    device = getattr(pipeline, "device", torch.device("cpu"))
    chunks = [chunk.to(device) for chunk in scene_set.reference.split(BATCH)]
    with torch.no_grad():  # the codec runs on the pipeline's device; judged on the CPU
        if all(hasattr(codec, part) for part in ("mel", "vocoder", "vae")):
            stages["vocoder"] = torch.cat([codec.vocoder(codec.mel(chunk)).squeeze(1)[:, :n].cpu()
                                           for chunk in chunks])
        stages["codec_round_trip"] = round_trip if round_trip is not None else torch.cat(
            [codec.decode(codec.encode(chunk).mean)[:, :n].float().cpu() for chunk in chunks])
    if generated is not None:
        stages["generated"] = generated
    report = {}
    for name, audio in stages.items():
        metrics = real if name == "real" else audio_metrics(audio, scene_set, classifier,
                                                            sample_rate=rate)
        report[name] = _stage_row(metrics, real)
        if name in ("vocoder", "codec_round_trip") and rate == SYNTH_RATE:  # synth renders
            report[name]["stft_vs_floor"] = stft_floor(scene_set, audio)
    return report


def threshold_sensitivity(audio: torch.Tensor, scene_set: SceneSet, sample_rate: int,
                          factors=(0.25, 0.5, 1.0, 2.0, 4.0)) -> dict[str, float]:
    """Onset F1 of the same takes with the detector threshold scaled (MODEL.md §2 lesson)."""
    out = {}
    for factor in factors:
        scores = [match_onsets(s.events, detect_onsets(w, sample_rate, threshold=THRESHOLD * factor))
                  for w, s in zip(audio.numpy(), scene_set.scenes)]
        out[f"x{factor:g}"] = round(f1_of(scores)[2], 4)
    return out
