"""`mfmjt train ...`: fine-tuning on in-house libraries (scan today; cache / fit / export next)."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="fine-tune on your sound library")
    tsub = train.add_subparsers(dest="train_command", metavar="ACTION", required=True)
    scan = tsub.add_parser("scan", help="report what a library folder holds (read-only)")
    scan.add_argument("folder")
    scan.add_argument("--window", type=float, default=8.0, help="training window in seconds")
    scan.add_argument("--json", action="store_true", help="print the report as JSON")


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
    return 2
