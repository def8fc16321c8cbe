"""`mfmjt train cache | fit | export`: the steps after `scan`, on the starter stack."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cache(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.bundles import load_bundle
    from engine.bundles.components import load_codec, load_encoder
    from trainer.cache import build_cache
    from trainer.data import scan_library

    bundle = load_bundle(args.bundle)
    report = scan_library(args.library, window_seconds=args.window)
    print(report.to_text())
    if not report.usable:
        return 1
    codec = load_codec(bundle)
    with tqdm(desc="caching", unit="shard") as bar:
        summary = build_cache(report, Path(args.out), codec=codec, encoder=load_encoder(bundle),
                              sample_rate=codec.sampling_rate,
                              files_per_shard=args.files_per_shard,
                              progress=lambda done, total: (setattr(bar, "total", total),
                                                            bar.update(done - bar.n)))
    (Path(args.out) / "scan.json").write_text(report.to_json())
    print(f"cache: {summary.windows} windows in {summary.shards} shards "
          f"({len(summary.reused)} reused) -> {args.out}")
    return 0


def fit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.bundles import load_bundle
    from trainer.cache import load_shards
    from trainer.lora import add_lora, freeze
    from trainer.loop import train
    from trainer.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    network = load_bundle(args.init).network
    out = Path(args.out)
    data = Path(args.data)
    if not any(data.glob("shard-*.safetensors")):  # a library: cache it first (resumable)
        window = args.window or network.config.training_duration
        status = cache(argparse.Namespace(library=data, bundle=args.init, out=out / "cache",
                                          window=window, files_per_shard=4))
        if status:
            return status
        data = out / "cache"
    if args.freeze:
        freeze(network, args.freeze)
    if args.lora:
        add_lora(network, rank=args.lora, alpha=2 * args.lora)
    total = min(recipe.steps, args.max_steps or recipe.steps)
    with tqdm(total=total, desc="training", unit="step") as bar:
        def progress(step, end, loss):
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.refresh()
        result = train(network, load_shards(data), recipe, out / "checkpoints",
                       resume=args.resume, max_steps=args.max_steps, progress=progress,
                       log_dir=out / "tensorboard")
    (out / "run.json").write_text(json.dumps({"init": str(args.init), "cache": str(data),
                                              "recipe": recipe.name, "lora": args.lora,
                                              "freeze": args.freeze}, indent=2))
    print(f"{result.status} at step {result.step}; last loss {result.last_loss:.4f}; "
          f"checkpoint {result.checkpoint}")
    return 0 if result.status == "finished" else 130


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
    kwargs = dict(preset=init.manifest["network"]["preset"], data_summary=summary,
                  codec=init.manifest.get("codec"), encoders=init.manifest.get("encoders"),
                  extra_from=init)
    if info.get("lora"):
        path = export_lora_checkpoint(checkpoint, args.out, init, rank=info["lora"], **kwargs)
    else:
        path = export_checkpoint(checkpoint, args.out, **kwargs)
    print(f"bundle written: {path}")
    return 0
