"""`mfmjt weights ...`: the weight registry from the command line."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    weights = sub.add_parser("weights", help="import, list, verify, remove, download, assemble "
                                             "official MMAudio weights")
    wsub = weights.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    imp = wsub.add_parser("import", help="import official .pth files (recognised by MD5)")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--kind", choices=("network", "vae", "vocoder", "synchformer", "clip"))
    imp.add_argument("--name", help="preset or component name for a re-saved copy")
    wsub.add_parser("list", help="list imported weights")
    wsub.add_parser("verify", help="check every registered file against its checksum")
    rm = wsub.add_parser("remove", help="remove an entry")
    rm.add_argument("kind")
    rm.add_argument("name")
    dl = wsub.add_parser("download", help="download an official file (needs internet)")
    dl.add_argument("kind")
    dl.add_argument("name")
    asm = wsub.add_parser("assemble", help="build a runnable bundle from imported weights")
    asm.add_argument("--preset", required=True)
    asm.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    from engine.bundles.registry import WeightRegistry
    from engine.errors import UserError

    registry = WeightRegistry()
    try:
        if args.weights_command == "import":
            if len(args.paths) > 1 and (args.kind or args.name):
                print("error: --kind/--name apply to a single file", file=sys.stderr)
                return 2
            for path in args.paths:
                entry = registry.import_file(path, kind=args.kind, name=args.name)
                print(f"imported {entry.kind} {entry.name} ({'official' if entry.official else 'not an official checksum'}, "
                      f"licence {entry.licence}) -> {registry.path_of(entry)}")
        elif args.weights_command == "list":
            entries = registry.entries()
            if not entries:
                print(f"no weights imported ({registry.root})")
            for e in entries:
                print(f"{e.kind:<12}{e.name:<16}{'official' if e.official else 'custom':<10}"
                      f"{e.licence:<14}{e.source_name}")
        elif args.weights_command == "verify":
            problems = 0
            for entry, problem in registry.verify():
                print(f"{entry.kind} {entry.name}: {problem or 'ok'}")
                problems += problem is not None
            return 1 if problems else 0
        elif args.weights_command == "remove":
            entry = registry.remove(args.kind, args.name)
            print(f"removed {entry.kind} {entry.name}")
        elif args.weights_command == "download":
            entry = registry.download(args.kind, args.name)
            print(f"downloaded and imported {entry.kind} {entry.name}")
        elif args.weights_command == "assemble":
            from engine.bundles.assemble import assemble
            path = assemble(registry, args.preset, args.out)
            print(f"bundle written: {path} (flow-matching mode; licence CC-BY-NC-4.0)")
    # what the user can fix (a file, a name, the network, an existing output); anything else is
    # a bug and keeps its traceback (issue 15)
    except (UserError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
