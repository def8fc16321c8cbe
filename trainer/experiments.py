"""The paper's experiments at our scale, on held-out synth scenes (issue 6 §4), for the model card:

  (a) 1 vs 2 / 4 / 8 / 25 steps: quality and time (paper Table 1's NFE axis);
  (b) standard CFG vs CFG-scaled for w in {1, 1.5, 2, 3}, one-step and multi-step
      (paper Fig. 3; issue 14's grid);
  (c) r != t ratio 10% / 30% / 60% (paper Fig. 4): bundles from short runs, given with --ablation;
plus the gate at the bundle's defaults, the codec stages (real audio, the vocoder alone, the codec
round trip, generated takes: class accuracy with the real-only classifier, tonality per class and
the frame-rate comb; issue 14), the onset detector's threshold sensitivity, the control with video
features shuffled across scenes, and spectrogram pictures (--pictures).

    python -m trainer.experiments --bundle engine/assets/starter --scenes 50 --seed 1 \\
        --out docs/starter_experiments.json [--ablation 10=runs/r10 30=runs/r30 60=runs/r60]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

GUIDANCE = (1.0, 1.5, 2.0, 3.0)
STEPS = (1, 2, 4, 8, 25)
KEYS = ("onset_f1", "onset_precision", "onset_recall", "onset_offset_ms", "class_accuracy",
        "frechet_distance", "clipping_fraction", "loudness_lufs_mean", "seconds_per_scene")


def _row(metrics: dict) -> dict:
    return {k: round(float(metrics[k]), 4) for k in KEYS}


def run(bundle: Path, *, scenes: int, seed: int, ablation: dict[str, Path],
        multi_step: int = 4, pictures: Path | None = None, gate_only: bool = False,
        classifier_path: Path | None = None, log=print) -> dict:
    """The report. `gate_only`: the gate, the codec round trip, the codec stages and the
    pictures, without the controls and the steps and guidance grids (a quarter of the time: the
    go / no-go on a freshly built bundle)."""
    from engine.pipeline import FoleyPipeline
    from trainer.classifier import load_classifier
    from trainer.evaluate import (audio_metrics, codec_stages, evaluate, generate_set,
                                  prepare_scenes, threshold_sensitivity)

    pipeline = FoleyPipeline(bundle)
    classifier = load_classifier(classifier_path)
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
    report["stages"] = codec_stages(pipeline, scene_set, classifier, generated=audio,
                                    round_trip=coded)
    if pictures is not None:
        from trainer.pictures import write_pictures
        report["pictures"] = write_pictures(pictures, scene_set.scenes, {
            "real": scene_set.reference, "round trip": coded, "generated": audio})
    report["threshold_sensitivity"] = threshold_sensitivity(audio, scene_set, pipeline.sample_rate)
    if gate_only:
        return report
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


def ablation_only(report: dict, ablation: dict[str, Path], log=print,
                  classifier_path: Path | None = None) -> dict:
    """Add table (c) to an existing report, on the same scenes and settings."""
    from engine.pipeline import FoleyPipeline
    from trainer.classifier import load_classifier
    from trainer.evaluate import evaluate, prepare_scenes
    classifier = load_classifier(classifier_path)
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


STAGE_LABELS = {"real": "real audio", "vocoder": "vocoder on the real mel",
                "codec_round_trip": "codec round trip", "generated": "generated takes"}


def stages_markdown(stages: dict) -> str:
    """Where timbre is kept or lost: the real-only classifier's accuracy, the ringing classes'
    tonality against real audio, the frame-rate comb, per class."""
    classes = list(stages["real"]["per_class"])
    lines = ["Codec stages (same scenes; classifier trained on real audio only):", "",
             "| stage | class acc. | metal/glass tonality vs real, dB | comb in silence, dB | "
             "onset F1 |", "|---|---|---|---|---|"]
    for name, row in stages.items():
        gap = row["ringing_tonality_vs_real_db"]
        lines.append(f"| {STAGE_LABELS.get(name, name)} | {row['class_accuracy']:.3f} | "
                     f"{'0' if name == 'real' else f'{gap:+.1f}' if gap is not None else '-'} | "
                     f"{row['comb_db']:.1f} | {row['onset_f1']:.3f} |")
    lines += ["", "Per class, accuracy / tonality (dB, peak over median after each event):", "",
              "| stage | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for name, row in stages.items():
        cells = [f"{row['per_class'][c]['class_accuracy']:.2f} / "
                 + ("-" if row['per_class'][c]['tonality_db'] is None
                    else f"{row['per_class'][c]['tonality_db']:.0f}") for c in classes]
        lines.append(f"| {STAGE_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    floors = [(name, row["stft_vs_floor"]) for name, row in stages.items() if "stft_vs_floor" in row]
    if floors:
        lines += ["", "Multi-resolution STFT distance to the real audio per class, beside its floor "
                      "(two renderings of the same scene that differ only in their noise):", "",
                  "| stage | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
        first = floors[0][1]
        lines.append("| floor | " + " | ".join(f"{first[c]['floor']:.2f}" for c in classes) + " |")
        for name, table in floors:
            lines.append(f"| {STAGE_LABELS.get(name, name)} | "
                         + " | ".join(f"{table[c]['distance']:.2f}" for c in classes) + " |")
    return "\n".join(lines)


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
             "| real audio through the codec " + fmt(report["codec_round_trip"])]
    if "shuffled_video" in report:  # absent from a --gate-only report
        lines += ["| shuffled video (control) " + fmt(report["shuffled_video"]),
                  "| with the caption as prompt " + fmt(report["with_caption"]), "",
                  "(a) Steps (defaults otherwise):", "", "| steps " + head + " s / scene |",
                  "|---|---|---|---|---|---|"]
    for k, row in report.get("steps", {}).items():
        lines.append(f"| {k} " + fmt(row) + f" {row['seconds_per_scene']:.3f} |")
    for key, table in report.get("guidance", {}).items():
        lines += ["", f"(b) Guidance, {key.replace('/', ', ')} step(s):", "", "| w " + head,
                  "|---|---|---|---|---|"]
        for w, row in table.items():
            lines.append(f"| {w} " + fmt(row))
    if "ratio_ablation" in report:
        lines += ["", "(c) r != t ratio (short runs, labelled with their steps):", "",
                  "| ratio | steps " + head, "|---|---|---|---|---|---|"]
        for label, row in report["ratio_ablation"].items():
            lines.append(f"| {label}% | {row['steps']} " + fmt(row))
    if "stages" in report:
        lines += ["", stages_markdown(report["stages"])]
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
    parser.add_argument("--pictures", type=Path, default=None,
                        help="folder for the spectrogram pictures of the model card")
    parser.add_argument("--ablation-only", action="store_true",
                        help="add table (c) to the existing --out report")
    parser.add_argument("--gate-only", action="store_true",
                        help="the gate, the codec stages and the pictures only (no controls, "
                             "no steps or guidance grids)")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="the evaluator's classifier (default: the one the product ships)")
    args = parser.parse_args(argv)
    ablation = {k: Path(v) for k, v in (item.split("=", 1) for item in args.ablation)}
    if args.gate_only and (ablation or args.ablation_only):
        parser.error("--gate-only measures no ablation; leave out --ablation / --ablation-only")
    if args.ablation_only:
        report = ablation_only(json.loads(args.out.read_text()), ablation,
                               classifier_path=args.classifier)
    else:
        report = run(args.bundle, scenes=args.scenes, seed=args.seed, ablation=ablation,
                     pictures=args.pictures, gate_only=args.gate_only,
                     classifier_path=args.classifier)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
