"""`mfmjt timeline inspect | foley`: editors' timelines in, a new version with Foley out."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub) -> None:
    from mfmjt_plugin.cli_types import (GUIDANCE, POSITIVE_SECONDS, SEED, STEPS, TAKES,
                                        add_device_option)
    tl = sub.add_parser("timeline", help="read a timeline, add Foley tracks as a new version")
    tsub = tl.add_subparsers(dest="timeline_command", metavar="ACTION", required=True)
    inspect = tsub.add_parser("inspect", help="tracks, clips, rates, markers, missing media")
    foley = tsub.add_parser("foley", help="generate Foley for a selection into a new version")
    for p in (inspect, foley):
        p.add_argument("file")
        p.add_argument("--rate", type=POSITIVE_SECONDS, default=None, help="frame rate (EDLs carry none)")
        p.add_argument("--sequence", default=None, help="sequence name or number")
        p.add_argument("--json", action="store_true")
    pick = foley.add_mutually_exclusive_group(required=True)
    pick.add_argument("--in", dest="tc_in", help="record in timecode (use ; for drop-frame)")
    pick.add_argument("--marker", help="marker name or colour")
    pick.add_argument("--clip", help="video clip name or number")
    pick.add_argument("--track", type=int, help="video track number (1 = lowest)")
    pick.add_argument("--all", action="store_true", help="the whole timeline")
    foley.add_argument("--out", dest="tc_out", help="record out timecode (with --in)")
    foley.add_argument("--prompt", default="")
    foley.add_argument("--negative-prompt", default="")
    foley.add_argument("--takes", type=TAKES, default=1)
    foley.add_argument("--best-of", type=TAKES, default=None, metavar="N",
                       help="N candidates per segment; keep the --takes best synchronised")
    foley.add_argument("--guidance", type=GUIDANCE, default=None)
    foley.add_argument("--mode", choices=["scaled", "standard", "none"], default=None)
    foley.add_argument("--steps", type=STEPS, default=None)
    foley.add_argument("--seed", type=SEED, default=0)
    foley.add_argument("--bundle", default="starter")
    add_device_option(foley)
    foley.add_argument("--format", choices=["otio", "xml", "fcpxml", "aaf", "mlt"], default=None,
                       help="format of the new timeline (default: the source's)")
    foley.add_argument("--search", type=Path, default=None,
                       help="folder to relink offline media from (searched by file name)")
    foley.add_argument("--media-out", type=Path, default=None,
                       help="folder for the WAVs (default: <timeline>_foley_media beside it)")
    foley.add_argument("--timeline-out", type=Path, default=None,
                       help="folder for the new timeline version (default: beside the source)")
    foley.add_argument("--engine", default=None, metavar="URL|auto",
                       help="generate on a running `mfmjt serve` (its URL, or `auto`) with its "
                            "bundle, instead of in this process")


def inspect(args) -> dict:
    import opentimelineio as otio

    from mfmjt_plugin.timeline.io import read_timeline
    from mfmjt_plugin.timeline.segments import media_path, timeline_rate
    from mfmjt_plugin.timeline.selection import exact_rate, to_timecode, visible_range_of

    timeline = read_timeline(args.file, rate=exact_rate(args.rate) if args.rate else None,
                             sequence=args.sequence)
    duration = timeline.tracks.duration()
    tracks, clips, missing = [], [], []
    for number, track in enumerate(timeline.tracks, 1):
        tracks.append({"number": number, "name": track.name, "kind": track.kind,
                       "enabled": track.enabled, "clips": len(track.find_clips())})
        for clip in track.find_clips():
            shown = visible_range_of(timeline, clip) if track.kind == "Video" else None
            path = media_path(clip)
            generated = isinstance(clip.media_reference, otio.schema.GeneratorReference)
            online = generated or (bool(path) and Path(path).is_file())
            clips.append({"track": number, "name": clip.name, "media": path, "online": online,
                          "generated": clip.media_reference.generator_kind if generated else None,
                          "record_in": to_timecode(timeline, shown.start_time) if shown else None,
                          "record_out": to_timecode(timeline, shown.end_time_exclusive())
                          if shown else None})
            if not online:
                missing.append(path or f"<{clip.name}: no media reference>")
    markers = [{"name": m.name, "color": m.color,
                "record_in": to_timecode(timeline, m.marked_range.start_time)}
               for m in timeline.tracks.markers]
    return {"name": timeline.name, "rate": timeline_rate(timeline),
            "start": to_timecode(timeline, otio.opentime.RationalTime(0, duration.rate)),
            "duration_s": duration.to_seconds(), "tracks": tracks, "clips": clips,
            "markers": markers, "missing_media": sorted(set(missing))}


# the seam's field names -> this command's options
FLAGS = {"engine": "--engine", "media_out": "--media-out", "timeline_out": "--timeline-out", "bundle": "--bundle",
         "guidance": "--guidance", "mode": "--mode", "steps": "--steps", "takes": "--takes",
         "best_of": "--best-of", "seed": "--seed", "device": "--device"}


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserError
    from mfmjt_plugin.cli_types import user_error_line
    from mfmjt_plugin.timeline.segments import TimelineError
    try:
        if args.timeline_command == "inspect":
            report = inspect(args)
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                print(f"{report['name']}: {report['rate']:.3f} fps, starts {report['start']}, "
                      f"{report['duration_s']:.2f} s")
                for t in report["tracks"]:
                    print(f"  track {t['number']} {t['kind']:<5} {t['name']!r} "
                          f"{'' if t['enabled'] else '(disabled) '}{t['clips']} clips")
                # numbered as --clip NAME|NUMBER counts: every clip of the enabled video tracks
                pictures = {t["number"] for t in report["tracks"] if t["kind"] == "Video" and t["enabled"]}
                video = [c for c in report["clips"] if c["track"] in pictures]
                for number, c in enumerate(video, 1):
                    print(f"  clip {number} {c['name']!r} "
                          f"{'at ' + c['record_in'] if c['record_in'] else '(not visible)'}")
                for m in report["markers"]:
                    print(f"  marker {m['name']!r} ({m['color']}) at {m['record_in']}")
                for path in report["missing_media"]:
                    print(f"  missing media: {path}")
            return 0
        from mfmjt_plugin.timeline.foley import FoleySettings, make_foley
        from mfmjt_plugin.timeline.selection import Selection
        if args.tc_in is not None and args.tc_out is None:
            raise TimelineError("--in needs --out")
        selection = Selection(tc_in=args.tc_in, tc_out=args.tc_out, marker=args.marker,
                              clip=args.clip, track=args.track)
        if args.best_of is not None and args.best_of < args.takes:
            raise TimelineError(f"--best-of {args.best_of} is fewer than --takes {args.takes}; "
                                f"give --best-of at least the number of takes")
        settings = FoleySettings(prompt=args.prompt, negative_prompt=args.negative_prompt,
                                 takes=args.takes, best_of=args.best_of,
                                 guidance=args.guidance, mode=args.mode,
                                 steps=args.steps, seed=args.seed, bundle=args.bundle,
                                 device=args.device)
        from mfmjt_plugin.progress import lazy_bar
        with lazy_bar("segments", "segment", disable=args.json) as progress:
            report = make_foley(args.file, selection, settings, rate=args.rate,
                                sequence=args.sequence, fmt=args.format, out_dir=args.media_out,
                                search=args.search, timeline_dir=args.timeline_out,
                                progress=progress, engine=args.engine)
    except UserError as err:
        print(user_error_line(err, FLAGS), file=sys.stderr)
        return 1
    except OSError as err:  # ours (a bundle not found), or the machine's
        from mfmjt_plugin.cli_types import os_error_line
        print(os_error_line(err, args.media_out or args.file), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['segments']} segment(s) of {report['selection']}")
        for take in report["takes"]:
            print(f"  take {take['take']}: {take['record_in']}-{take['record_out']} {take['wav']}")
        for skipped in report["skipped"]:
            print(f"  skipped {skipped['clip']!r} {skipped['record_in']}-{skipped['record_out']}: "
                  f"{skipped['reason']}")
        print(f"timeline: {report['timeline']}")
        if report.get("companion"):
            print(f"note: {report['companion']}")
    return 0
