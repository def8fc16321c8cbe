"""The paper's experiments at our scale, on held-out synth scenes (issue 6 §4), for the model card:

  (a) 1 vs 2 / 4 / 8 / 25 steps: quality and time (paper Table 1's NFE axis);
  (b) standard CFG vs CFG-scaled for w in {1, 1.5, 2.5, 3.5, 4.5}, one-step and multi-step
      (paper Fig. 3);
  (c) r != t ratio 10% / 30% / 60% (paper Fig. 4): bundles from short runs, given with --ablation;
plus the gate at the bundle's defaults, the onset detector's threshold sensitivity and the control
with video features shuffled across scenes.

    python -m trainer.experiments --bundle engine/assets/starter --scenes 50 --seed 1 \\
        --out docs/starter_experiments.json [--ablation 10=runs/r10 30=runs/r30 60=runs/r60]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

GUIDANCE = (1.0, 1.5, 2.5, 3.5, 4.5)
STEPS = (1, 2, 4, 8, 25)
KEYS = ("onset_f1", "onset_precision", "onset_recall", "onset_offset_ms", "class_accuracy",
        "frechet_distance", "clipping_fraction", "loudness_lufs_mean", "seconds_per_scene")


def _row(metrics: dict) -> dict:
    return {k: round(float(metrics[k]), 4) for k in KEYS}


def run(bundle: Path, *, scenes: int, seed: int, ablation: dict[str, Path],
        multi_step: int = 4, log=print) -> dict:
    from engine.pipeline import FoleyPipeline
    from trainer.classifier import load_classifier
    from trainer.evaluate import (audio_metrics, evaluate, generate_set, prepare_scenes,
                                  threshold_sensitivity)

    pipeline = FoleyPipeline(bundle)
    classifier = load_classifier()
    began = time.perf_counter()
    scene_set = prepare_scenes(pipeline, count=scenes, seed=seed)
    log(f"{scenes} scenes prepared in {time.perf_counter() - began:.1f} s")
    defaults = pipeline.defaults
    base = {"guidance": defaults["guidance"], "mode": defaults["mode"], "steps": 1}

    def measure(settings: dict, **kwargs) -> dict:
        metrics = evaluate(pipeline, classifier, scenes=scenes, seed=seed, settings=settings,
                           scene_set=scene_set, **kwargs)
        log(f"{settings} {kwargs or ''}: F1 {metrics['onset_f1']:.3f} offset "
            f"{metrics['onset_offset_ms']:.1f} ms acc {metrics['class_accuracy']:.3f} "
            f"FD {metrics['frechet_distance']:.2f}")
        return metrics

    gate = measure(base)
    report = {"bundle": str(bundle), "scenes": scenes, "seed": seed, "defaults": defaults,
              "gate": {**_row(gate), "per_class": gate["per_class"]},
              "real_audio": gate["real_audio"]}
    import torch
    with torch.no_grad():  # the codec's own ceiling: real audio encoded and decoded again
        coded = pipeline.codec.decode(pipeline.codec.encode(scene_set.reference).mean)
    coded = coded[:, : scene_set.reference.shape[1]]
    report["codec_round_trip"] = _row({**audio_metrics(coded, scene_set, classifier,
                                                       sample_rate=pipeline.sample_rate),
                                       "seconds_per_scene": 0.0})
    audio, _ = generate_set(pipeline, scene_set, base)
    report["threshold_sensitivity"] = threshold_sensitivity(audio, scene_set, pipeline.sample_rate)
    report["shuffled_video"] = _row(measure(base, shuffle_video=True))
    report["with_caption"] = _row(measure(base, with_caption=True))
    report["steps"] = {str(k): _row(measure({**base, "steps": k})) for k in STEPS}
    report["guidance"] = {
        f"{mode}/{steps}": {f"{w:g}": _row(measure({"guidance": w, "mode": mode, "steps": steps}))
                            for w in GUIDANCE}
        for steps in (1, multi_step) for mode in ("standard", "scaled")}
    if ablation:
        report["ratio_ablation"] = {}
        for label, path in ablation.items():
            other = FoleyPipeline(path)
            metrics = evaluate(other, classifier, scenes=scenes, seed=seed, settings=base,
                               scene_set=scene_set)
            report["ratio_ablation"][label] = {**_row(metrics),
                                               "steps": other.bundle.manifest["provenance"].get("steps")}
            log(f"ratio {label}: F1 {metrics['onset_f1']:.3f} acc {metrics['class_accuracy']:.3f}")
    return report


def ablation_only(report: dict, ablation: dict[str, Path], log=print) -> dict:
    """Add table (c) to an existing report, on the same scenes and settings."""
    from engine.pipeline import FoleyPipeline
    from trainer.classifier import load_classifier
    from trainer.evaluate import evaluate, prepare_scenes
    classifier = load_classifier()
    base = {"guidance": report["defaults"]["guidance"], "mode": report["defaults"]["mode"],
            "steps": 1}
    scene_set = None
    report["ratio_ablation"] = {}
    for label, path in ablation.items():
        other = FoleyPipeline(path)
        scene_set = scene_set or prepare_scenes(other, count=report["scenes"], seed=report["seed"])
        metrics = evaluate(other, classifier, scenes=report["scenes"], seed=report["seed"],
                           settings=base, scene_set=scene_set)
        report["ratio_ablation"][label] = {
            **_row(metrics), "steps": other.bundle.manifest["provenance"].get("steps")}
        log(f"ratio {label}: F1 {metrics['onset_f1']:.3f} acc {metrics['class_accuracy']:.3f}")
    return report


def markdown(report: dict) -> str:
    def fmt(row):
        return (f"| {row['onset_f1']:.3f} | {row['onset_offset_ms']:.1f} | "
                f"{row['class_accuracy']:.3f} | {row['frechet_distance']:.2f} |")
    head = "| onset F1 | offset ms | class acc. | FD |"
    lines = [f"Held-out scenes: {report['scenes']} (seed {report['seed']}); defaults "
             f"{report['defaults']}.", "", "Gate (one step, defaults):", "",
             "| | " + head[2:], "|---|---|---|---|---|",
             "| generated " + fmt(report["gate"]),
             f"| real audio | {report['real_audio']['onset_f1']:.3f} | "
             f"{report['real_audio']['onset_offset_ms']:.1f} | "
             f"{report['real_audio']['class_accuracy']:.3f} | "
             f"{report['real_audio']['frechet_distance']:.2f} |",
             "| real audio through the codec " + fmt(report["codec_round_trip"]),
             "| shuffled video (control) " + fmt(report["shuffled_video"]),
             "| with the caption as prompt " + fmt(report["with_caption"]), "",
             "(a) Steps (defaults otherwise):", "", "| steps " + head + " s / scene |",
             "|---|---|---|---|---|---|"]
    for k, row in report["steps"].items():
        lines.append(f"| {k} " + fmt(row) + f" {row['seconds_per_scene']:.3f} |")
    for key, table in report["guidance"].items():
        lines += ["", f"(b) Guidance, {key.replace('/', ', ')} step(s):", "", "| w " + head,
                  "|---|---|---|---|---|"]
        for w, row in table.items():
            lines.append(f"| {w} " + fmt(row))
    if "ratio_ablation" in report:
        lines += ["", "(c) r != t ratio (short runs, labelled with their steps):", "",
                  "| ratio | steps " + head, "|---|---|---|---|---|---|"]
        for label, row in report["ratio_ablation"].items():
            lines.append(f"| {label}% | {row['steps']} " + fmt(row))
    lines += ["", "Onset detector threshold sensitivity (F1 of the gate takes): "
              + ", ".join(f"{k}: {v:.3f}" for k, v in report["threshold_sensitivity"].items())]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ablation", nargs="*", default=[], help="LABEL=BUNDLE pairs")
    parser.add_argument("--ablation-only", action="store_true",
                        help="add table (c) to the existing --out report")
    args = parser.parse_args(argv)
    ablation = {k: Path(v) for k, v in (item.split("=", 1) for item in args.ablation)}
    if args.ablation_only:
        report = ablation_only(json.loads(args.out.read_text()), ablation)
    else:
        report = run(args.bundle, scenes=args.scenes, seed=args.seed, ablation=ablation)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
