"""The `mfmjt` command. Heavy imports are deferred so `mfmjt --help` is instant."""
from __future__ import annotations

import argparse
import sys


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mfmjt-foley")
    except PackageNotFoundError:
        return "0.0.0+source"


def build_parser() -> argparse.ArgumentParser:
    from mfmjt_plugin.cli_types import SEED, OneLineParser, add_device_option, whole_number
    parser = OneLineParser(prog="mfmjt", description="MF-MJT Foley: one-step "
                           "synchronised Foley generation for picture editors.")
    parser.add_argument("--version", action="version", version=f"mfmjt-foley {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the end-to-end demo on the embedded starter model")
    demo.add_argument("--out", default="demo-output", help="folder for the take and preview")
    demo.add_argument("--seed", type=SEED, default=0)
    add_device_option(demo)
    demo.add_argument("--toy", action="store_true",
                      help="instead: the 2-D MeanFlow vs flow-matching illustration")
    demo.add_argument("--steps", type=whole_number(minimum=1, maximum=10 ** 6), default=None,
                      help="--toy: training steps per model")
    doctor = sub.add_parser("doctor", help="check torch / GPU / driver, disk, memory, PortAudio, "
                            "melt and weights; each problem with its fix")
    doctor.add_argument("--json", action="store_true", help="machine-readable, for bug reports")
    panel = sub.add_parser("panel", help="the desktop panel (also `mfmjt-panel`)",
                           add_help=False)
    panel.add_argument("panel_args", nargs=argparse.REMAINDER,
                       help="FILE, --engine, --bundle, --device, --screenshot (see mfmjt-panel -h)")
    from mfmjt_plugin import generate_cli, serve_cli, timeline_cli, train_cli, weights_cli
    generate_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    timeline_cli.add_parser(sub)
    weights_cli.add_parser(sub)
    train_cli.add_parser(sub)
    return parser


def _one_line_warnings() -> None:
    """Our own warnings (a newer file read with downgraded schemas) as one `warning:` line on
    stderr, not Python's file:line form; everyone else's as Python shows them."""
    import warnings
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if getattr(category, "__module__", "").startswith(("mfmjt_plugin", "engine", "trainer")):
            print(f"warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    _one_line_warnings()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["panel"]:
        # the panel is the layer above this one (ui -> mfmjt_plugin): started as its own program
        # with every argument as given (its own parser reads them), never imported from here
        import subprocess
        return subprocess.call([sys.executable, "-m", "ui.app", *argv[1:]])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:
        # Ctrl-C: each command removes its partial outputs on the way out (atomic writes,
        # takes of an unfinished delivery); say so in one line instead of a traceback
        print("cancelled", file=sys.stderr)
        return 130


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "demo":
        from mfmjt_plugin import demo
        if args.toy:
            return demo.run_toy(steps=args.steps, seed=args.seed)
        return demo.run(out=args.out, seed=args.seed, device=args.device)
    if args.command == "doctor":
        from mfmjt_plugin import doctor
        return doctor.run(as_json=args.json)
    if args.command == "generate":
        from mfmjt_plugin import generate_cli
        return generate_cli.run(args)
    if args.command == "serve":
        from mfmjt_plugin import serve_cli
        return serve_cli.run(args)
    if args.command == "timeline":
        from mfmjt_plugin import timeline_cli
        return timeline_cli.run(args)
    if args.command == "weights":
        from mfmjt_plugin import weights_cli
        return weights_cli.run(args)
    if args.command == "train":
        from mfmjt_plugin import train_cli
        return train_cli.run(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
