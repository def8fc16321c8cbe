"""Generation off the UI thread, through the engine seam's client (`engine.client`: the engine in
this process, or a running `mfmjt serve`), never `FoleyPipeline` directly.

A run is a list of job bodies made on the worker thread when their turn comes (a timeline's next
segment takes the next free take names only once the previous segment's files exist); each job
is submitted, its progress events become signals, and its result arrives as `job_done`. Cancel
sets this run's token and cancels the engine's current job, which stops between stages (well
under a second on the starter model)."""
from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Callable, Optional

from PyQt6.QtCore import QObject, pyqtSignal

FINISHED = ("done", "failed", "cancelled")


# imported once before the window shows: a first import inside a worker holds Python's GIL
# for whole stretches (pydantic alone ~0.6 s here), which would freeze the event loop mid-job
PRELOAD = ("engine.service.schema", "engine.jobs", "engine.deliver", "engine.media.bwf",
           "engine.media.picture", "pyloudnorm", "mfmjt_plugin.timeline.foley")


def preload() -> None:
    import importlib
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional piece: whatever needs it says so when used
            pass


def in_process_engine(bundle: str, device: str):
    """The engine in this process; every local folder is allowed (the editor picks files)."""
    from engine.client import InProcessEngine
    return InProcessEngine(bundle, device=device, roots=[Path(Path.cwd().anchor)])


def http_engine(url: str):
    from mfmjt_plugin.remote import connect
    return connect(url)


class GenerationRunner(QObject):
    engine_ready = pyqtSignal(dict)          # the engine's models(): bundle, device, licence
    progress = pyqtSignal(str, int, int)      # stage, done, total (of the current job)
    job_done = pyqtSignal(int, int, dict)     # run number, job index, its result (TakesReport JSON)
    finished = pyqtSignal(str)                # "done" | "cancelled" | "failed"
    failed = pyqtSignal(str, str)             # one line for people, details

    def __init__(self, engine_factory: Callable[..., object], parent=None, *,
                 bundle_factory: bool = False):
        """`engine_factory()` makes the engine; with `bundle_factory`, `engine_factory(bundle)`
        (the in-process engine loads the model the panel's picker names; a service runs its
        own)."""
        super().__init__(parent)
        self._factory = engine_factory
        self.bundle_factory = bundle_factory
        self.bundle = "starter"
        self.engine = None
        self._engine_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._cancel = threading.Event()
        self._job_id: Optional[str] = None
        self.run = 0  # numbers each start(): results of a run the panel has left are dropped

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connect_engine(self):
        """The engine, made on first use (loading a bundle takes seconds: call from a worker)."""
        with self._engine_lock:
            if self.engine is None:
                self.engine = self._factory(self.bundle) if self.bundle_factory else self._factory()
                self.engine_ready.emit(self.engine.models())
            return self.engine

    def use_bundle(self, bundle: str) -> None:
        """The model the next run uses (in-process engines only); the old one is let go."""
        if not self.bundle_factory or bundle == self.bundle:
            return
        with self._engine_lock:
            old, self.engine, self.bundle = self.engine, None, bundle
        if old is not None and hasattr(old, "close"):
            old.close()

    def warm_up(self) -> None:
        """Load the engine in the background so the first Generate starts at once."""
        def run():
            try:
                self.connect_engine()
            except Exception as err:
                self.failed.emit(_one_line(err), traceback.format_exc())
        threading.Thread(target=run, name="mfmjt-engine", daemon=True).start()

    def start(self, prepare: Callable[[], list[Callable[[], dict]]], *,
              bundle: Optional[str] = None) -> int:
        """Run the job bodies `prepare()` returns (called on the worker thread), one by one, on
        `bundle` (in-process engines); returns this run's number (carried by `job_done`)."""
        if self.busy:
            raise RuntimeError("a generation is already running")
        self._cancel = threading.Event()
        self.run += 1
        self._thread = threading.Thread(target=self._run, args=(prepare, self._cancel, self.run,
                                                                bundle),
                                        name="mfmjt-generate", daemon=True)
        self._thread.start()
        return self.run

    def cancel(self) -> None:
        """Stop the run: its token now, the engine's job from a thread (over HTTP a cancel is a
        request that may wait on the network; the UI never does)."""
        self._cancel.set()
        job_id, engine = self._job_id, self.engine
        if job_id is None or engine is None:
            return

        def send():
            try:
                engine.cancel(job_id)
            except Exception:  # the job may have just finished, or the engine gone: nothing to do
                pass
        threading.Thread(target=send, name="mfmjt-cancel", daemon=True).start()

    def wait(self, timeout: float = 60.0) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def _run(self, prepare, token: threading.Event, run: int, bundle: Optional[str]) -> None:
        state = "done"
        try:
            self.progress.emit("starting the engine", 0, 1)
            if bundle is not None:
                self.use_bundle(bundle)
            engine = self.connect_engine()
            self.progress.emit("preparing", 0, 1)
            bodies = prepare()
            for index, body_of in enumerate(bodies):
                if token.is_set():
                    state = "cancelled"
                    break
                state = self._one_job(engine, run, index, body_of(), token)
                if state != "done":
                    break
        except Exception as err:
            from engine.client import EngineError
            state = "failed"
            details = "" if isinstance(err, EngineError) else traceback.format_exc()
            self.failed.emit(_one_line(err), details)
        finally:
            self._job_id = None
            self.finished.emit(state)

    def _one_job(self, engine, run: int, index: int, body: dict, token: threading.Event) -> str:
        job = engine.submit(body)
        self._job_id = job["id"]
        if token.is_set():  # cancelled while it was being submitted
            engine.cancel(job["id"])
        final = None
        for event in engine.events(job["id"]):
            if event["event"] == "progress":
                self.progress.emit(str(event.get("stage", "")), int(event.get("done", 0)),
                                   int(event.get("total", 0) or 1))
            else:
                final = event["job"]
        self._job_id = None
        if final is None:
            raise RuntimeError("the engine stopped answering before the job ended")
        if final["state"] == "done":
            self.job_done.emit(run, index, final["result"])
            return "done"
        if final["state"] == "cancelled":
            return "cancelled"
        error = final.get("error") or {}
        self.failed.emit(error.get("message", "the job failed"), error.get("traceback", ""))
        return "failed"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
