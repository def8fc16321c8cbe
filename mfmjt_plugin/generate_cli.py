"""`mfmjt generate VIDEO ...`: in-process generation of Foley takes for a movie range."""
from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Optional

from mfmjt_plugin.cli_types import timecode_seconds


def add_parser(sub) -> None:
    gen = sub.add_parser("generate", help="generate Foley takes for a movie (range)")
    from mfmjt_plugin.cli_types import GUIDANCE, SEED, STEPS, TAKES, time_point
    gen.add_argument("video")
    gen.add_argument("--start", type=time_point, default=None,
                     help="range start: seconds, or the source timecode HH:MM:SS:FF")
    gen.add_argument("--end", type=time_point, default=None,
                     help="range end: seconds or timecode (default: the end)")
    gen.add_argument("--prompt", default="")
    gen.add_argument("--negative-prompt", default="")
    gen.add_argument("--guidance", type=GUIDANCE, default=None,
                     help="guidance strength w (default: the bundle's)")
    gen.add_argument("--mode", choices=["scaled", "standard", "none"], default=None)
    gen.add_argument("--steps", type=STEPS, default=None, help="sampling steps (default: bundle's)")
    gen.add_argument("--seed", type=SEED, default=0)
    gen.add_argument("--takes", type=TAKES, default=1)
    gen.add_argument("--best-of", type=TAKES, default=None, metavar="N",
                     help="generate N candidates in one batch and keep the --takes best "
                          "synchronised with the picture (N >= --takes)")
    gen.add_argument("--bundle", default="starter",
                     help="bundle path or registered name; `starter` is the shipped model")
    gen.add_argument("--out", required=True, help="folder for the takes and the preview")
    gen.add_argument("--no-preview", action="store_true")
    gen.add_argument("--json", action="store_true", help="print paths, timings and provenance")


def resolve_bundle(name: str) -> Path:
    """A bundle folder, the shipped `starter`, or a bundle registered under that name."""
    from engine.paths import data_dir, starter_bundle_dir
    if name == "starter":
        return starter_bundle_dir()
    path = Path(name)
    if path.exists():
        return path
    registered = data_dir() / "bundles" / name
    if registered.exists():
        return registered
    raise FileNotFoundError(f"bundle {name!r} is neither a folder nor a registered bundle; "
                            f"pass a bundle path or `starter`")


def writable_folder(folder: Path) -> None:
    from engine.atomic import unwritable_reason
    reason = unwritable_reason(folder)
    if reason == "it is a file, not a folder":
        raise ValueError(f"{folder} is a file, not a folder; give --out a folder for the takes")
    if reason is not None:
        raise ValueError(f"{folder}: cannot write there ({reason}); choose another --out folder")


def generate(video: Path, *, bundle: str, out: Path, start=None, end=None,
             prompt: str = "", negative_prompt: str = "", guidance=None, mode=None, steps=None,
             seed: int = 0, takes: int = 1, best_of: Optional[int] = None, preview: bool = True,
             quiet: bool = False) -> dict:
    import time

    from engine.deliver import write_takes
    from engine.features.cache import FeatureCache
    from engine.pipeline import FoleyPipeline, GenerateRequest
    from mfmjt_plugin.progress import lazy_bar

    from engine.media.decode import probe
    from mfmjt_plugin.cli_types import TimePoint

    began = time.perf_counter()
    out = Path(out)
    if best_of is not None and best_of < takes:
        raise ValueError(f"--best-of {best_of} is fewer than --takes {takes}; give --best-of at "
                         f"least the number of takes")
    writable_folder(out)  # before any work: a wrong --out must not cost a generation
    info = probe(video)

    def seconds(point) -> Optional[Fraction]:
        if point is None:
            return None
        if isinstance(point, TimePoint):
            seconds = point.resolve(info.frame_rate, info.timecode)
            if info.timecode is None and point.timecode and info.duration and seconds > info.duration:
                raise ValueError(f"{video} has no timecode track, so timecodes count from "
                                 f"00:00:00:00 and {point.timecode} lies past its end "
                                 f"({float(info.duration):.3f} s); give --start/--end in seconds")
            return seconds
        return Fraction(point).limit_denominator(100000)
    # the picture's features are cached on disk: regenerating a range with another seed, prompt
    # or guidance skips decoding and encoding it again
    pipeline = FoleyPipeline(resolve_bundle(bundle), feature_cache=FeatureCache())
    load_s = time.perf_counter() - began
    request = GenerateRequest(media=video, start=seconds(start) or Fraction(0), end=seconds(end),
                              prompt=prompt, negative_prompt=negative_prompt, guidance=guidance,
                              mode=mode, steps=steps, seed=seed, takes=takes, best_of=best_of)
    pipeline.settings(request)  # every number checked before the picture is decoded
    with lazy_bar("generating", "step", disable=quiet) as progress:
        result = pipeline.generate(request, progress=progress)
    began = time.perf_counter()
    provenance = {"bundle": str(pipeline.bundle.path), "network_sha256": pipeline.bundle.network_sha256,
                  "codec_version": getattr(pipeline.codec, "version", None), **result.settings, "seed": seed, "prompt": prompt,
                  "negative_prompt": negative_prompt}
    # the takes carry the source's time of day: its timecode track plus the range start
    source_start = timecode_seconds(info.timecode, info.frame_rate or Fraction(25)) \
        if info.timecode else Fraction(0)
    delivered = write_takes(result, request, out, preview=preview, provenance=provenance,
                            record_start=source_start + result.start)
    timings = {"load_s": load_s, **result.timings, "write_s": time.perf_counter() - began}
    return {"takes": [str(p) for p in delivered.takes],
            "take_details": [{"path": str(p), "seed": t.seed, "sync_score": t.sync_score}
                             for p, t in zip(delivered.takes, result.takes)],
            "preview": str(delivered.preview) if delivered.preview else None,
            "range": [float(result.start), float(result.start + result.duration)],
            "settings": result.settings, "timings": {k: round(v, 3) for k, v in timings.items()},
            "provenance": provenance}


def run(args: argparse.Namespace) -> int:
    from engine.bundles import BundleError
    from engine.media.errors import MediaError
    try:
        report = generate(Path(args.video), bundle=args.bundle, out=Path(args.out),
                          start=args.start, end=args.end, prompt=args.prompt,
                          negative_prompt=args.negative_prompt, guidance=args.guidance,
                          mode=args.mode, steps=args.steps, seed=args.seed, takes=args.takes,
                          best_of=args.best_of, preview=not args.no_preview, quiet=args.json)
    except (BundleError, MediaError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # ours (a bundle not found), or the machine's: a full disk, read-only
        from mfmjt_plugin.cli_types import os_error_line
        print(os_error_line(err, args.out), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for take in report["take_details"]:
            sync = "" if take["sync_score"] is None else f", sync {take['sync_score']:.2f}"
            print(f"take: {take['path']} (seed {take['seed']}{sync})")
        if report["preview"]:
            print(f"preview: {report['preview']}")
        t = report["timings"]
        print(f"settings: {report['settings']}; features {t['features_s']:.2f} s, "
              f"generation {t['generate_s']:.2f} s")
    return 0
