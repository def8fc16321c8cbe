"""`mfmjt serve`: run the local engine service for the panel and the host add-ons."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    from mfmjt_plugin.cli_types import add_device_option, whole_number
    serve = sub.add_parser("serve", help="run the local engine service (loopback HTTP with a "
                                         "token) for the panel and the host add-ons")
    serve.add_argument("--port", type=whole_number(minimum=0, maximum=65535), default=0,
                       help="TCP port (default: a free one, announced on stdout)")
    serve.add_argument("--bundle", default="starter", help="bundle path or registered name")
    add_device_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow --host to be a non-loopback address (prints a warning)")
    serve.add_argument("--allow-root", action="append", type=Path, default=None, metavar="DIR",
                       help="a folder jobs may read media from and write takes to (repeat; "
                            "default: your home and the temporary folder)")
    serve.add_argument("--max-queue", type=whole_number(minimum=1, maximum=1000), default=16,
                       help="jobs that may wait; more are refused with HTTP 429")
    serve.add_argument("--job-timeout", type=float, default=600.0,
                       help="seconds a job may run before it is cancelled")


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserError
    from engine.service.server import serve
    from mfmjt_plugin.cli_types import user_error_line
    try:
        return serve(port=args.port, bundle=args.bundle, device=args.device, host=args.host,
                     allow_remote=args.allow_remote, roots=args.allow_root,
                     max_queue=args.max_queue, timeout=args.job_timeout)
    except UserError as err:
        print(user_error_line(err, {"bundle": "--bundle", "device": "--device"}), file=sys.stderr)
        return 1
    except OSError as err:  # the port taken, the runtime folder unwritable
        print(f"error: cannot start the engine: {err.strerror or err}; try another --port",
              file=sys.stderr)
        return 1
