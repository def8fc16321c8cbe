"""The paper's recipe at toy scale (issue 16 §4): a flow-matching network (MMAudio's objective),
then the MeanFlow fine-tune from it, judged in ONE step on unseen synth scenes as it trains.

    python -m trainer.one_step_curve --cache runs/starter/cache --out runs/curve

1. `toy-flow-matching` from nothing on the starter's cache (preset `starter`, the Δ-embedder
   frozen at zero, so the network answers as an imported MMAudio checkpoint does);
2. `toy-meanflow-finetune` from that network (`mfmjt train fit --init`), a bundle exported
   every `--every` steps (raw weights; step 0 is the flow-matching network itself);
3. each bundle evaluated by the real-only classifier and the onset detector
   (`trainer/evaluate.py`) on the same unseen scenes at one step, and the flow-matching network
   also at `--multi` steps: the ceiling the one-step takes should climb towards (paper Fig. 1,
   Table 1: one-step MeanFlow close to many-step flow matching).

Resumable (every stage skips what is on disk); one thread, like the starter's build. Writes
`curve.json` + `curve.md` in --out (docs/ONE_STEP_CURVE.md is a copy).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

RECIPES = Path(__file__).parent / "recipes"
FM_RECIPE, MF_RECIPE = RECIPES / "toy-flow-matching.toml", RECIPES / "toy-meanflow-finetune.toml"
SETTINGS = {"guidance": 1.0, "mode": "scaled"}  # no guidance: the objective alone is compared


def _log(text: str) -> None:
    print(f"[curve {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _fit(args: list[str]) -> None:
    from mfmjt_plugin.cli import main
    status = main(["train", "fit", *args])
    if status:
        raise SystemExit(f"mfmjt train fit {' '.join(args)} failed ({status})")


def _export(run: Path, out: Path, init: Path) -> Path:
    """The run's latest checkpoint as a bundle with `init`'s codec and encoders (raw weights:
    the starter's choice at this length of training, model card)."""
    from engine.bundles import load_bundle
    from trainer.checkpoint import latest_checkpoint
    from trainer.export import export_checkpoint
    if out.exists():
        return out
    source = load_bundle(init)
    return export_checkpoint(latest_checkpoint(run / "checkpoints"), out,
                             preset=source.manifest["network"]["preset"],
                             codec=source.manifest.get("codec"),
                             encoders=source.manifest.get("encoders"), extra_from=source,
                             weights="model")


def _steps_done(run: Path) -> int:
    from trainer.checkpoint import checkpoint_step, latest_checkpoint
    latest = latest_checkpoint(run / "checkpoints") if (run / "checkpoints").is_dir() else None
    return checkpoint_step(latest) if latest else 0


def one_folder(cache: Path, out: Path) -> Path:
    """A cache the CLI reads: `cache` itself, or, for the starter build's per-process parts
    (part-N/shard-*), one folder of links to every part's shards and the latent statistics."""
    if any(cache.glob("shard-*.safetensors")):
        return cache
    merged = out / "cache"
    merged.mkdir(parents=True, exist_ok=True)
    for part in sorted(cache.glob("part-*")):
        for shard in sorted(part.glob("shard-*.safetensors")):
            link = merged / f"shard-{part.name}-{shard.name.removeprefix('shard-')}"
            if not link.exists():
                link.symlink_to(shard.resolve())
    stats = cache / "latent_stats.safetensors"
    if stats.exists() and not (merged / stats.name).exists():
        (merged / stats.name).symlink_to(stats.resolve())
    if not any(merged.glob("shard-*.safetensors")):
        raise SystemExit(f"{cache}: no cache shards there (shard-*.safetensors or part-*/)")
    return merged


def build(cache: Path, out: Path, *, every: int) -> list[tuple[str, Path]]:
    """Train both runs and export the bundles to judge: [(label, bundle)]."""
    from engine.bundles.resolve import resolve_bundle
    from trainer.recipe import load_recipe
    cache = one_folder(cache, out)
    fm_run, mf_run = out / "flow-matching", out / "meanflow"
    fm_total = load_recipe(str(FM_RECIPE)).steps
    if _steps_done(fm_run) < fm_total:
        _log(f"flow matching: {_steps_done(fm_run)} -> {fm_total} steps")
        _fit(["--recipe", str(FM_RECIPE), "--cache", str(cache), "--preset", "starter",
              "--freeze", "dt_embed", "--out", str(fm_run), "--device", "cpu"]
             + (["--resume"] if (fm_run / "run.json").exists() else []))
    fm_bundle = _export(fm_run, out / "bundles" / "fm", resolve_bundle("starter"))
    bundles = [("flow matching", fm_bundle)]
    mf_total = load_recipe(str(MF_RECIPE)).steps
    for target in range(every, mf_total + 1, every):
        if _steps_done(mf_run) < target:
            _log(f"MeanFlow fine-tune: {_steps_done(mf_run)} -> {target} steps")
            _fit(["--recipe", str(MF_RECIPE), "--cache", str(cache), "--init", str(fm_bundle),
                  "--out", str(mf_run), "--max-steps", str(target), "--device", "cpu"]
                 + (["--resume"] if (mf_run / "run.json").exists() else []))
        bundles.append((f"MeanFlow {target}", _export(mf_run, out / "bundles" / f"mf{target}",
                                                     fm_bundle)))
    return bundles


def judge(bundles: list[tuple[str, Path]], *, scenes: int, seed: int, multi: int) -> list[dict]:
    from engine.pipeline import FoleyPipeline
    from trainer.classifier import load_classifier
    from trainer.evaluate import evaluate, prepare_scenes
    classifier = load_classifier()
    scene_set, rows = None, []
    for label, bundle in bundles:
        pipeline = FoleyPipeline(bundle, device="cpu")
        scene_set = scene_set or prepare_scenes(pipeline, count=scenes, seed=seed)
        for steps in ((1, multi) if label == "flow matching" else (1,)):
            metrics = evaluate(pipeline, classifier, scenes=scenes, seed=seed,
                               settings={**SETTINGS, "steps": steps}, scene_set=scene_set)
            rows.append({"network": label, "steps": steps, "bundle": str(bundle),
                         **{k: round(float(metrics[k]), 4) for k in
                            ("onset_f1", "onset_offset_ms", "class_accuracy", "frechet_distance")}})
            _log(json.dumps(rows[-1]))
    return rows


def markdown(rows: list[dict], *, scenes: int, seed: int) -> str:
    lines = ["# One-step quality through the MeanFlow fine-tune (toy scale)", "",
             f"`python -m trainer.one_step_curve` on the starter's cache; {scenes} unseen scenes "
             f"(`eval:{seed}`), no guidance, raw weights. The flow-matching rows are the "
             f"baseline (one Euler step) and the ceiling (many steps).", "",
             "| network | steps | onset F1 | offset ms | class acc. | FD |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['network']} | {r['steps']} | {r['onset_f1']:.3f} | {r['onset_offset_ms']:.1f} "
              f"| {r['class_accuracy']:.3f} | {r['frechet_distance']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.one_step_curve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, type=Path, help="a latent cache (train cache)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--every", type=int, default=200, help="fine-tune steps between bundles")
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1000, help="scenes eval:SEED (never trained)")
    parser.add_argument("--multi", type=int, default=25, help="the flow-matching ceiling's steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    bundles = build(args.cache, args.out, every=args.every)
    rows = judge(bundles, scenes=args.scenes, seed=args.seed, multi=args.multi)
    from engine.atomic import atomic_write_bytes
    atomic_write_bytes(args.out / "curve.json", (json.dumps(rows, indent=1) + "\n").encode(),
                       overwrite=True)
    text = markdown(rows, scenes=args.scenes, seed=args.seed)
    atomic_write_bytes(args.out / "curve.md", text.encode(), overwrite=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
