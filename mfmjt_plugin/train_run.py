"""`mfmjt train cache | fit | export | evaluate`: the steps after `scan`, on the starter stack."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import UserError


def cache(args: argparse.Namespace) -> int:
    return cache_library(Path(args.library), str(args.bundle), Path(args.out),
                         window=args.window, files_per_shard=args.files_per_shard,
                         device=args.device)


def cache_library(library: Path, bundle_name: str, out: Path, *, window: float,
                  files_per_shard: int, device: str = "auto") -> int:
    """Scan a sound library and cache its latents and features with the bundle's codec and
    encoders (resumable); 1 when the library has nothing usable."""
    from tqdm import tqdm

    from engine.bundles import load_bundle
    from engine.bundles.components import load_codec, load_encoder
    from engine.bundles.resolve import resolve_bundle
    from trainer.cache import build_cache
    from trainer.data import scan_library
    from engine.devices import resolve_device
    device = resolve_device(device)
    bundle = load_bundle(resolve_bundle(bundle_name))
    report = scan_library(library, window_seconds=window)
    print(report.to_text())
    if not report.usable:
        return 1
    codec = load_codec(bundle).to(device)
    with tqdm(desc="caching", unit="shard") as bar:
        summary = build_cache(report, out, codec=codec,
                              encoder=load_encoder(bundle, device=str(device)),
                              sample_rate=codec.sampling_rate, files_per_shard=files_per_shard,
                              progress=lambda done, total: (setattr(bar, "total", total),
                                                            bar.update(done - bar.n)))
    (out / "scan.json").write_text(report.to_json())
    print(f"cache: {summary.windows} windows in {summary.shards} shards "
          f"({len(summary.reused)} reused) -> {out}")
    return 0


def check_run_folder(out: Path, *, resume: bool) -> None:
    """A run folder belongs to one run: reusing it without --resume would mix two runs'
    checkpoints (and export the wrong one), so it is refused before any work."""
    from trainer.checkpoint import latest_checkpoint
    existing = latest_checkpoint(out / "checkpoints") if (out / "checkpoints").is_dir() else None
    if not resume and (existing is not None or (out / "run.json").exists()):
        held = f"checkpoint {existing.name}" if existing else "run.json"
        raise FileExistsError(f"{out} already holds a training run ({held}); continue it with "
                              f"--resume, or give a new --out folder")


def write_run_record(out: Path, record: dict, *, resume: bool) -> None:
    """run.json says what the run was started with; written once, atomically, before the first
    step. Resuming with other settings is refused: the export would describe the wrong run."""
    from engine.atomic import atomic_target
    path = out / "run.json"
    if path.exists():
        before = json.loads(path.read_text())
        differs = sorted(k for k in record if before.get(k) != record[k])
        if resume and differs:
            changes = ", ".join(f"{k} was {before.get(k)!r}, now {record[k]!r}" for k in differs)
            raise UserError(f"{out} was started with other settings ({changes}); resume it with "
                            f"those, or give a new --out folder")
        return
    out.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2))


def fit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.bundles import load_bundle
    from trainer.cache import load_shards
    from trainer.lora import add_lora, freeze
    from trainer.loop import train
    from trainer.recipe import load_recipe

    from engine.bundles.resolve import resolve_bundle
    from engine.model.config import preset_config
    from trainer.export import new_network

    from engine.devices import resolve_device
    recipe = load_recipe(args.recipe)
    device = resolve_device(args.device)  # before any work
    out = Path(args.out)
    check_run_folder(out, resume=args.resume)
    # --init: fine-tune that bundle; --preset alone: a new network of that preset whose codec
    # and encoders come from the shipped starter bundle (the only starter-stack codec we have)
    if args.init is None and args.preset is None:
        raise UserError("give --init BUNDLE to fine-tune, or --preset NAME for a new network")
    init = resolve_bundle(args.init or "starter")
    init_bundle = load_bundle(init)  # read once: network (with --init), codec, encoders
    config = preset_config(args.preset) if args.init is None else init_bundle.network.config
    data = Path(args.data)
    if not any(data.glob("shard-*.safetensors")):  # a library: cache it first (resumable)
        window = args.window or config.training_duration
        status = cache_library(data, str(init), out / "cache", window=window, files_per_shard=4,
                               device=args.device)
        if status:
            return status
        data = out / "cache"
    network = (init_bundle.network if args.init is not None else
               new_network(args.preset, data)).to(device)
    if args.freeze:
        freeze(network, args.freeze)
    if args.lora:
        add_lora(network, rank=args.lora, alpha=2 * args.lora)
    from engine.bundles.components import load_codec
    from trainer.validation import make_validator
    shards = load_shards(data)
    validate = make_validator(shards, load_codec(init_bundle))
    write_run_record(out, {"init": str(Path(init).resolve()), "cache": str(data.resolve()),
                           "preset": args.preset if args.init is None else None,
                           "recipe": recipe.name, "lora": args.lora, "freeze": args.freeze},
                     resume=args.resume)
    total = min(recipe.steps, args.max_steps or recipe.steps)
    with tqdm(total=total, desc="training", unit="step") as bar:
        def progress(step, end, loss):
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.refresh()
        result = train(network, shards, recipe, out / "checkpoints",
                       resume=args.resume, max_steps=args.max_steps, progress=progress,
                       log_dir=out / "tensorboard", validate=validate)
    print(f"{result.status} at step {result.step}; last loss {result.last_loss:.4f}; "
          f"checkpoint {result.checkpoint}")
    return 0 if result.status == "finished" else 130


def codec(args: argparse.Namespace) -> int:
    """`mfmjt train codec LIBRARY --out DIR`: the starter codec's parts on a studio library."""
    from tqdm import tqdm

    from trainer.codec_fit import combine_parts, fit_codec
    from trainer.codec_library import library_clips
    out = Path(args.out)
    if not args.resume and (out / "progress.json").exists():
        raise UserError(f"{out} already holds a codec run; add --resume to continue it or "
                        f"choose a new --out folder")
    with tqdm(desc="reading the library", unit="file", leave=False) as bar:
        clips = library_clips(args.library, progress=lambda d, n: (
            setattr(bar, "total", n), bar.update(d - bar.n)))
    print(f"{clips.files} files, {len(clips.waves)} clips of 4 s; "
          f"{len(clips.skipped)} skipped, {len(clips.clipped_files)} clipping")
    for path, reason in clips.skipped:
        print(f"  skipped {path}: {reason}")
    for path in clips.clipped_files:
        print(f"  clipping (kept; the codec learns it): {path}")
    parts = ["vae", "vocoder", "vocoder-timbre", "vocoder-gan"] if args.part == "all" \
        else [args.part]
    for part in parts:
        steps = max(1, args.steps // 10) if part == "vocoder-gan" else args.steps
        batch, segment = (8, 8192) if part == "vocoder-gan" else (16, 16384)
        with tqdm(total=steps, desc=part, unit="step") as bar:
            fit_codec(clips.waves, out, part=part, steps=steps, batch=batch, segment=segment,
                      resume=args.resume or part in ("vocoder-timbre", "vocoder-gan"),
                      progress=lambda step, total, logs: bar.update(step - bar.n))
    if (out / "vae.safetensors").exists() and (out / "vocoder.safetensors").exists():
        print(f"codec: {combine_parts(out, out / 'codec.safetensors')}")
    return 0


def export(args: argparse.Namespace) -> int:
    from engine.bundles import load_bundle
    from trainer.checkpoint import latest_checkpoint
    from trainer.export import export_checkpoint, export_lora_checkpoint

    run = Path(args.run)
    info = json.loads((run / "run.json").read_text())
    checkpoint = latest_checkpoint(run / "checkpoints")
    if checkpoint is None:
        print(f"error: {run}: no checkpoint to export", file=sys.stderr)
        return 1
    init = load_bundle(info["init"])
    scan = Path(info["cache"]) / "scan.json"
    data = json.loads(scan.read_text()) if scan.exists() else {}
    summary = {k: data.get(k) for k in ("root", "usable_files", "hours", "windows")}
    preset = info.get("preset") or init.manifest["network"]["preset"]
    kwargs = dict(preset=preset, data_summary=summary,
                  codec=init.manifest.get("codec"), encoders=init.manifest.get("encoders"),
                  extra_from=init)
    if info.get("lora"):
        path = export_lora_checkpoint(checkpoint, args.out, init, rank=info["lora"], **kwargs)
    else:
        path = export_checkpoint(checkpoint, args.out, **kwargs)
    print(f"bundle written: {path}")
    return 0


def format_table(metrics: dict) -> str:
    real = metrics["real_audio"]
    rows = [("onset F1 (±50 ms)", "onset_f1", "{:.3f}"),
            ("mean onset offset, ms", "onset_offset_ms", "{:.1f}"),
            ("class accuracy", "class_accuracy", "{:.3f}"),
            ("Fréchet distance", "frechet_distance", "{:.2f}")]
    lines = [f"{'metric':<26}{'generated':>12}{'real audio':>12}"]
    for label, key, fmt in rows:
        lines.append(f"{label:<26}{fmt.format(metrics[key]):>12}{fmt.format(real[key]):>12}")
    lines.append(f"{'onset precision / recall':<26}{metrics['onset_precision']:>6.3f} / "
                 f"{metrics['onset_recall']:.3f}")
    lines.append(f"{'clipped samples':<26}{metrics['clipping_fraction']:>12.2e}")
    lines.append(f"{'loudness, LUFS (mean)':<26}{metrics['loudness_lufs_mean']:>12.1f}")
    lines.append(f"{'seconds per scene':<26}{metrics['seconds_per_scene']:>12.3f}")
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.pipeline import FoleyPipeline, GenerateRequest
    from engine.bundles.resolve import resolve_bundle
    from trainer.classifier import load_classifier
    from trainer.evaluate import evaluate as run_evaluation

    if args.scenes < 2:
        raise UserError(f"--scenes must be at least 2 (a Fréchet distance needs two), got "
                        f"{args.scenes}")
    pipeline = FoleyPipeline(resolve_bundle(args.bundle), device=args.device)
    settings = pipeline.settings(GenerateRequest(media=Path("."), guidance=args.guidance,
                                                 mode=args.mode, steps=args.steps))
    with tqdm(total=args.scenes, desc="scenes", unit="scene", leave=False,
              disable=args.json) as bar:
        metrics = run_evaluation(pipeline, load_classifier(), scenes=args.scenes, seed=args.seed,
                                 settings=settings, shuffle_video=args.shuffle_video,
                                 with_caption=args.with_caption, stages=True,
                                 progress=lambda done, total: bar.update(done - bar.n))
    metrics["bundle"] = str(pipeline.bundle.path)
    text = json.dumps(metrics, indent=2)
    from engine.atomic import atomic_write_bytes
    from engine.naming import next_version_path
    name = Path(metrics["bundle"]).name
    report = atomic_write_bytes(next_version_path(Path(args.out), f"evaluate_{name}_seed{args.seed}",
                                                  ".json"), (text + "\n").encode())
    from trainer.experiments import stages_markdown
    print(text if args.json else
          f"{args.scenes} unseen scenes (seed {args.seed}), {settings}\n" + format_table(metrics)
          + "\n\n" + stages_markdown(metrics["stages"]) + f"\nreport: {report}")
    return 0
