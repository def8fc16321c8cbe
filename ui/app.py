"""`mfmjt-panel [FILE]` (also `mfmjt panel`): the desktop panel. `--screenshot PNG FILE` opens
FILE, renders the main window (the offscreen platform works), writes the PNG and exits."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mfmjt-panel", description=__doc__)
    p.add_argument("file", nargs="?", default=None, help="a movie or a timeline to open")
    p.add_argument("--engine", default=None, metavar="URL|auto",
                   help="a running `mfmjt serve` (auto: this user's); default: in this process")
    p.add_argument("--bundle", default="starter", help="the model the in-process engine loads")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--screenshot", default=None, metavar="PNG",
                   help="render the window with FILE open into PNG and exit")
    return p


def build_window(args: argparse.Namespace, *, player=None):
    from ui.generation import GenerationRunner, http_engine, in_process_engine
    from ui.main_window import MainWindow
    if args.engine:
        runner = GenerationRunner(lambda: http_engine(args.engine))
    else:
        runner = GenerationRunner(lambda bundle: in_process_engine(bundle, args.device),
                                  bundle_factory=True)
        runner.bundle = args.bundle
    window = MainWindow(runner, player=player)
    window.choose_bundle(args.bundle)
    return window


def settle(app, window, seconds: float = 10.0) -> None:
    """Process events until the viewer shows a picture (or a message) and the strip its
    thumbnails, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        doc = window.document
        picture_done = doc is None or not doc.has_picture or window.viewer.image is not None
        strip_done = doc is None or doc.kind != "movie" or bool(window.strip.thumbnails)
        if picture_done and strip_done:
            break
        time.sleep(0.02)
    app.processEvents()


def _qt_messages(_kind, _context, text: str) -> None:
    """Qt's own diagnostics on stderr, less the offscreen platform's note that it cannot size
    windows (said once per window, and meaningless for a screenshot)."""
    if "propagateSizeHints" not in text:
        print(text, file=sys.stderr)


def install_excepthook(window) -> None:
    """A bug in a click handler is shown like any error (with its traceback in Details) and
    the panel goes on; PyQt6 would otherwise abort the whole application."""
    import traceback

    def hook(kind, value, tb):
        details = "".join(traceback.format_exception(kind, value, tb))
        print(details, file=sys.stderr)
        try:
            window.show_error(f"something went wrong: {str(value).splitlines()[0] if str(value) else kind.__name__} "
                              f"(the panel goes on; Details has what to report)", details)
        except Exception:  # the window itself is gone
            pass
    sys.excepthook = hook


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("DISPLAY") \
            and sys.platform.startswith("linux"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    from PyQt6.QtCore import qInstallMessageHandler
    from PyQt6.QtWidgets import QApplication

    from ui.theme import apply_dark
    qInstallMessageHandler(_qt_messages)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MF-MJT Foley")
    apply_dark(app)
    window = build_window(args)
    install_excepthook(window)
    window.show()
    if args.file and not window.open_path(Path(args.file)):
        if args.screenshot:
            print(f"error: {window.errors[-1][0]}", file=sys.stderr)
            return 1
    if args.screenshot:
        settle(app, window)
        if not window.grab().save(args.screenshot):
            print(f"error: {args.screenshot}: cannot write the PNG there", file=sys.stderr)
            return 1
        print(f"screenshot: {args.screenshot}")
        window.close()
        return 0
    if not args.engine:
        window.runner.warm_up()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
