"""`mfmjt generate VIDEO ...`: in-process generation of Foley takes for a movie range."""
from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Optional


def add_parser(sub) -> None:
    gen = sub.add_parser("generate", help="generate Foley takes for a movie (range)")
    from mfmjt_plugin.cli_types import GUIDANCE, SEED, STEPS, TAKES, add_device_option, time_point
    gen.add_argument("video", nargs="?", default=None,
                     help="the movie; without one (or with audio-only media or a still image) "
                          "the prompt alone sets the sound (text-to-audio, --end seconds long)")
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
    add_device_option(gen)
    gen.add_argument("--bundle", default="starter",
                     help="bundle path or registered name; `starter` is the shipped model")
    gen.add_argument("--out", required=True, help="folder for the takes and the preview")
    gen.add_argument("--no-preview", action="store_true")
    gen.add_argument("--json", action="store_true", help="print paths, timings and provenance")
    gen.add_argument("--engine", default=None, metavar="URL|auto",
                     help="generate on a running `mfmjt serve` (its URL, or `auto`: the one "
                          "announced in your runtime folder) instead of in this process")


# the seam's field names -> this command's options (engine/errors.py: front ends add their words)
FLAGS = {"engine": "--engine", "out": "--out", "bundle": "--bundle", "guidance": "--guidance", "mode": "--mode",
         "steps": "--steps", "takes": "--takes", "best_of": "--best-of", "seed": "--seed",
         "timecode": "--start/--end", "device": "--device", "range": "--start/--end",
         "prompt": "--prompt"}


def take_request(video: Optional[Path], *, out: Path, start=None, end=None, **settings):
    """The seam's request for `video`, --start / --end resolved to seconds from its first frame
    (a timecode counts in the movie's own timecode). Without a video: text-to-audio from
    --start to --end seconds."""
    from engine.jobs import TakeRequest
    from engine.media.decode import MediaInfo, probe
    from mfmjt_plugin.cli_types import TimePoint
    info = probe(video) if video is not None else \
        MediaInfo(path=Path("."), has_video=False, has_audio=False, duration=Fraction(0))

    def seconds(point) -> Optional[Fraction]:
        if point is None:
            return None
        if isinstance(point, TimePoint):
            seconds = point.resolve(info.frame_rate, info.timecode)
            if info.timecode is None and point.timecode and info.duration and seconds > info.duration:
                from engine.errors import UserError
                raise UserError(f"{video} has no timecode track, so timecodes count from "
                                f"00:00:00:00 and {point.timecode} lies past its end "
                                f"({float(info.duration):.3f} s); give the range in seconds",
                                field="timecode")
            return seconds
        return Fraction(point).limit_denominator(100000)
    return TakeRequest(media=None if video is None else Path(video), out=Path(out),
                       start=seconds(start) or Fraction(0),
                       end=seconds(end), **settings)


def generate(request, *, quiet: bool = False, engine: Optional[str] = None) -> dict:
    """The seam with a progress bar per stage (in this process, or on the service at `engine`);
    the report as JSON."""
    from mfmjt_plugin.progress import stage_bars
    if engine is not None:
        return generate_on_service(request, engine, quiet=quiet)
    from engine.jobs import generate_takes
    with stage_bars(disable=quiet) as progress:
        return generate_takes(request, progress=progress).to_json()


def generate_on_service(request, engine: str, *, quiet: bool = False) -> dict:
    """The same request as a job of a running service; its events drive the same bars."""
    from mfmjt_plugin.progress import stage_bars
    from mfmjt_plugin.remote import connect, run_job
    client = connect(engine)
    with stage_bars(disable=quiet) as progress:
        return run_job(client, request, progress=progress)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserError
    from mfmjt_plugin.cli_types import user_error_line
    try:
        request = take_request(
            None if args.video is None else Path(args.video), out=Path(args.out), start=args.start, end=args.end,
            prompt=args.prompt, negative_prompt=args.negative_prompt, guidance=args.guidance,
            mode=args.mode, steps=args.steps, seed=args.seed, takes=args.takes,
            best_of=args.best_of, bundle=args.bundle, device=args.device,
            preview=not args.no_preview)
        report = generate(request, quiet=args.json, engine=args.engine)
    except UserError as err:
        print(user_error_line(err, FLAGS), file=sys.stderr)
        return 1
    except OSError as err:  # the machine's: a full disk, a read-only volume
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
