"""`mfmjt generate VIDEO ...`: in-process generation of Foley takes for a movie range."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub) -> None:
    gen = sub.add_parser("generate", help="generate Foley takes for a movie (range)")
    gen.add_argument("video")
    gen.add_argument("--start", type=float, default=0.0, help="range start, seconds")
    gen.add_argument("--end", type=float, default=None, help="range end, seconds (default: end)")
    gen.add_argument("--prompt", default="")
    gen.add_argument("--negative-prompt", default="")
    gen.add_argument("--guidance", type=float, default=None,
                     help="guidance strength w (default: the bundle's)")
    gen.add_argument("--mode", choices=["scaled", "standard", "none"], default=None)
    gen.add_argument("--steps", type=int, default=None, help="sampling steps (default: bundle's)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--takes", type=int, default=1)
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


def generate(video: Path, *, bundle: str, out: Path, start: float = 0.0, end=None,
             prompt: str = "", negative_prompt: str = "", guidance=None, mode=None, steps=None,
             seed: int = 0, takes: int = 1, preview: bool = True, quiet: bool = False) -> dict:
    import time
    from fractions import Fraction

    from engine.deliver import write_takes
    from engine.features.cache import FeatureCache
    from engine.pipeline import FoleyPipeline, GenerateRequest
    from mfmjt_plugin.progress import lazy_bar

    began = time.perf_counter()
    # the picture's features are cached on disk: regenerating a range with another seed, prompt
    # or guidance skips decoding and encoding it again
    pipeline = FoleyPipeline(resolve_bundle(bundle), feature_cache=FeatureCache())
    load_s = time.perf_counter() - began
    request = GenerateRequest(media=video, start=Fraction(start).limit_denominator(100000),
                              end=None if end is None else Fraction(end).limit_denominator(100000),
                              prompt=prompt, negative_prompt=negative_prompt, guidance=guidance,
                              mode=mode, steps=steps, seed=seed, takes=takes)
    with lazy_bar("generating", "step", disable=quiet) as progress:
        result = pipeline.generate(request, progress=progress)
    began = time.perf_counter()
    provenance = {"bundle": str(pipeline.bundle.path), "network_sha256": pipeline.bundle.network_sha256,
                  **result.settings, "seed": seed, "prompt": prompt,
                  "negative_prompt": negative_prompt}
    delivered = write_takes(result, request, out, preview=preview, provenance=provenance)
    timings = {"load_s": load_s, **result.timings, "write_s": time.perf_counter() - began}
    return {"takes": [str(p) for p in delivered.takes],
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
                          preview=not args.no_preview, quiet=args.json)
    except (BundleError, MediaError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for path in report["takes"]:
            print(f"take: {path}")
        if report["preview"]:
            print(f"preview: {report['preview']}")
        t = report["timings"]
        print(f"settings: {report['settings']}; features {t['features_s']:.2f} s, "
              f"generation {t['generate_s']:.2f} s")
    return 0
