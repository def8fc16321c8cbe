"""`mfmjt train ...`: fine-tuning on in-house libraries: scan, cache, fit, export, evaluate."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    from mfmjt_plugin.cli_types import (GUIDANCE, POSITIVE_SECONDS, SEED, STEPS, add_device_option,
                                        whole_number)
    train = sub.add_parser("train", help="fine-tune on your sound library")
    tsub = train.add_subparsers(dest="train_command", metavar="ACTION", required=True)
    scan = tsub.add_parser("scan", help="report what a library folder holds (read-only)")
    scan.add_argument("folder")
    scan.add_argument("--window", type=POSITIVE_SECONDS, default=8.0, help="training window in seconds")
    scan.add_argument("--json", action="store_true", help="print the report as JSON")
    cache = tsub.add_parser("cache", help="encode a library's windows once (resumable)")
    cache.add_argument("library")
    cache.add_argument("--bundle", required=True, help="bundle whose codec and encoders to use")
    cache.add_argument("--out", required=True)
    cache.add_argument("--window", type=POSITIVE_SECONDS, default=8.0)
    cache.add_argument("--files-per-shard", type=whole_number(minimum=1, maximum=10000), default=4)
    add_device_option(cache)
    fit = tsub.add_parser("fit", help="train from a bundle on a cache")
    fit.add_argument("--recipe", required=True)
    fit.add_argument("--data", "--cache", dest="data", required=True,
                     help="a cache from `train cache`, or a library folder (cached into OUT/cache)")
    fit.add_argument("--window", type=POSITIVE_SECONDS, default=None,
                     help="window seconds when caching a library (default: the network's)")
    fit.add_argument("--init", default=None,
                     help="bundle to start from (path, registered name or `starter`)")
    fit.add_argument("--preset", default=None,
                     help="without --init: train a new network of this preset (e.g. starter) "
                          "on the starter codec and encoders")
    fit.add_argument("--out", required=True)
    fit.add_argument("--resume", action="store_true")
    fit.add_argument("--max-steps", type=whole_number(minimum=1, maximum=10 ** 9))
    fit.add_argument("--lora", type=whole_number(minimum=0, maximum=1024), default=0, help="LoRA rank (0: full fine-tune)")
    fit.add_argument("--freeze", nargs="*", default=[], help="parameter name prefixes to freeze")
    add_device_option(fit)
    codec = tsub.add_parser("codec", help="train the starter codec (VAE and vocoder) on a sound "
                                          "library (resumable)")
    codec.add_argument("library")
    codec.add_argument("--out", required=True, help="folder for the codec's parts and codec file")
    codec.add_argument("--part", choices=["vae", "vae-decoder", "vocoder", "vocoder-timbre",
                                           "vocoder-codec", "vocoder-gan", "all"],
                       default="all")
    codec.add_argument("--steps", type=whole_number(minimum=1, maximum=10 ** 7), default=2000,
                       help="steps per part (the GAN fine-tune: a tenth of them)")
    codec.add_argument("--resume", action="store_true")
    exp = tsub.add_parser("export", help="write a run's EMA weights as a bundle")
    exp.add_argument("--run", required=True)
    exp.add_argument("--out", required=True)
    ev = tsub.add_parser("evaluate", help="measure a bundle on synth scenes it never saw")
    ev.add_argument("--bundle", default="starter", help="bundle path, registered name or starter")
    ev.add_argument("--scenes", type=whole_number(minimum=1, maximum=100000), default=50)
    ev.add_argument("--seed", type=SEED, default=1, help="scenes are generated from this seed")
    ev.add_argument("--steps", type=STEPS, default=None, help="default: the bundle's")
    ev.add_argument("--guidance", type=GUIDANCE, default=None, help="default: the bundle's")
    ev.add_argument("--mode", choices=["scaled", "standard", "none"], default=None)
    ev.add_argument("--shuffle-video", action="store_true",
                    help="control: give every scene another scene's picture")
    ev.add_argument("--with-caption", action="store_true",
                    help="prompt with each scene's caption (default: no prompt)")
    ev.add_argument("--out", default="evaluations",
                    help="folder for the JSON report (a new versioned file each run)")
    ev.add_argument("--json", action="store_true", help="print the JSON instead of a table")
    add_device_option(ev)


def run(args: argparse.Namespace) -> int:
    if args.train_command == "scan":
        from tqdm import tqdm

        from trainer.data import scan_library
        if args.window <= 0:
            print(f"error: --window must be > 0, got {args.window}", file=sys.stderr)
            return 2
        with tqdm(desc="scanning", unit="file", disable=args.json, leave=False) as bar:
            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)
            try:
                report = scan_library(args.folder, window_seconds=args.window, progress=progress)
            except FileNotFoundError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
        print(report.to_json() if args.json else report.to_text())
        return 0 if report.usable else 1
    from mfmjt_plugin import train_run
    from engine.errors import UserError
    try:
        return {"cache": train_run.cache, "fit": train_run.fit, "codec": train_run.codec,
                "export": train_run.export,
                "evaluate": train_run.evaluate}[args.train_command](args)
    # what the user can fix (a bundle, a recipe, a cache, a library, a run folder); any other
    # ValueError is a bug and keeps its traceback (issue 15)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # a GPU out of memory is the user's to act on; others are bugs
        from engine.devices import is_out_of_memory, resolve_device
        if not is_out_of_memory(err):
            raise
        print(f"error: the {resolve_device(getattr(args, 'device', 'auto')).type.upper()} device "
              f"ran out of memory; use a recipe with a smaller batch (copy its TOML), more GPUs "
              f"(torchrun), LoRA, or the cpu device", file=sys.stderr)
        return 1
    except OSError as err:  # ours (a run folder in use), or a read-only folder, a full disk
        from mfmjt_plugin.cli_types import os_error_line
        print(os_error_line(err, getattr(args, "out", None)), file=sys.stderr)
        return 1
