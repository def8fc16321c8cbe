"""Jobs of the local engine (issue 15): a bounded queue, one worker per device with the bundle
kept loaded, per-job timeouts and cancel tokens, progress events, and a journal on disk so that a
restart reports the jobs it interrupted as failed instead of losing them.

FastAPI-free: the HTTP app (`engine/service/app.py`) and the in-process engine client
(`engine/client.py`) both drive this one `JobManager`, so they behave the same.
"""
from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

from engine.atomic import atomic_target
from engine.cancel import Cancelled, CancelToken, Progress
from engine.errors import RequestError, UserError

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
MAX_PROMPT = 2000  # characters: a prompt is a sentence, not a document
DEFAULT_QUEUE = 16
DEFAULT_TIMEOUT = 600.0  # seconds a job may run before it is cancelled as timed out


class QueueFull(Exception):
    """The queue holds as many jobs as it may; the client should retry later (HTTP 429)."""


class PathNotAllowed(UserError):
    """A media or takes path outside the folders the service may read and write (HTTP 403)."""


@dataclass
class Job:
    id: str
    request: dict
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: Optional[float] = None
    finished: Optional[float] = None
    events: list[dict] = field(default_factory=list)
    result: Optional[dict] = None
    error: Optional[dict] = None
    token: CancelToken = field(default_factory=CancelToken, repr=False)
    take: object = field(default=None, repr=False)  # the checked TakeRequest (not journalled)
    cancel_reason: Optional[str] = None

    def to_json(self) -> dict:
        return {"id": self.id, "state": self.state, "created": self.created,
                "started": self.started, "finished": self.finished, "request": self.request,
                "progress": self.events[-1] if self.events else None,
                "result": self.result, "error": self.error}


def take_request(body: dict, *, roots: list[Path]):
    """The seam's TakeRequest from a job body (already shaped by the schema), with every path
    checked against the allowed roots."""
    from engine.jobs import TakeRequest
    media, out = _allowed(body["media"], roots, "media"), _allowed(body["out"], roots, "out")
    if len(body.get("prompt") or "") > MAX_PROMPT or len(body.get("negative_prompt") or "") > MAX_PROMPT:
        raise RequestError(f"the prompt is longer than {MAX_PROMPT} characters; describe the "
                           f"sound in a sentence", field="prompt")

    def seconds(value) -> Optional[Fraction]:
        return None if value is None else Fraction(value).limit_denominator(100000)
    delivery = {}
    if body.get("delivery"):
        spec = body["delivery"]
        paths = tuple(_allowed(path, roots, "delivery.paths") for path in spec["paths"])
        if len(paths) != int(body.get("takes") or 1):
            raise RequestError(f"{len(paths)} take paths for {body.get('takes') or 1} takes; "
                               f"give one path per take", field="delivery.paths")
        if any(path.parent != out for path in paths):
            raise RequestError("the take paths must lie in the takes folder",
                               field="delivery.paths")
        delivery = dict(paths=paths, record_start=Fraction(spec["record_start"]),
                        frame_rate=Fraction(spec["frame_rate"]),
                        head_handle=Fraction(spec.get("head_handle") or "0"),
                        extra_provenance=dict(spec.get("extra_provenance") or {}))
        if delivery["frame_rate"] <= 0:
            raise RequestError("the frame rate must be above 0", field="delivery.frame_rate")
    return TakeRequest(media=media, out=out, start=seconds(body.get("start")) or Fraction(0),
                       end=seconds(body.get("end")), prompt=body.get("prompt") or "",
                       negative_prompt=body.get("negative_prompt") or "",
                       guidance=body.get("guidance"), mode=body.get("mode"),
                       steps=body.get("steps"), seed=int(body.get("seed") or 0),
                       takes=int(body.get("takes") or 1), best_of=body.get("best_of"),
                       preview=bool(body.get("preview", False)), **delivery)


def _allowed(text: str, roots: list[Path], name: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise RequestError(f"{text}: give an absolute path", field=name)
    resolved = path.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        raise PathNotAllowed(f"{text} is outside the folders this engine may use "
                             f"({', '.join(map(str, roots))}); start it with --allow-root for "
                             f"that folder", field=name)
    return resolved


class JobManager:
    """Queue + one worker thread. `submit` checks a request completely (paths, settings, the
    media's range) before it creates a job: a bad request gets its error and leaves nothing."""

    def __init__(self, pipeline, *, state_dir: Path, roots: list[Path],
                 max_queue: int = DEFAULT_QUEUE, timeout: float = DEFAULT_TIMEOUT):
        self.pipeline = pipeline
        self.roots = [Path(r).resolve() for r in roots]
        self.timeout = timeout
        self.journal = Path(state_dir) / "jobs"
        self.journal.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.interrupted = self._recover()
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="mfmjt-engine-worker", daemon=True)
        self.worker.start()

    # ------------------------------------------------------------------ journal
    def _write(self, job: Job) -> None:
        # atomic, not fsynced: the journal must survive the service's death (kill -9 leaves the
        # page cache), and an fsync per state change cost more than the rest of a job's overhead
        with atomic_target(self.journal / f"{job.id}.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(job.to_json()))

    def _recover(self) -> list[str]:
        """Jobs a previous run left queued or running are failed now, and the partial files of
        their deliveries removed; finished ones are listed again."""
        interrupted = []
        for path in sorted(self.journal.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            job = Job(id=data["id"], request=data["request"], state=data["state"],
                      created=data["created"], started=data.get("started"),
                      finished=data.get("finished"), result=data.get("result"),
                      error=data.get("error"),
                      events=[data["progress"]] if data.get("progress") else [])
            if job.state not in FINISHED:
                job.state, job.finished = "failed", time.time()
                job.error = {"message": "the engine stopped while this job ran; run it again",
                             "field": None}
                _remove_partials(Path(job.request.get("out", "")))
                self._write(job)
                interrupted.append(job.id)
            self.jobs[job.id] = job
        return interrupted

    # ------------------------------------------------------------------ API
    def submit(self, body: dict) -> Job:
        request = take_request(body, roots=self.roots)
        # everything checked now, so a bad request never becomes a job
        self.pipeline.settings(request)  # best-of against takes included
        self.pipeline.check_range(request)
        from engine.jobs import check_takes_folder
        check_takes_folder(request.out)
        job = Job(id=uuid.uuid4().hex[:12], request={**body, "media": str(request.media),
                                                     "out": str(request.out)}, take=request)
        with self.lock:
            try:
                self.queue.put_nowait(job)
            except queue.Full:
                raise QueueFull(f"{self.queue.maxsize} jobs are waiting; try again when one "
                                f"has finished") from None
            self.jobs[job.id] = job
            self._write(job)
        return job

    def get(self, job_id: str) -> Optional[Job]:
        with self.lock:
            return self.jobs.get(job_id)

    def list(self) -> list[Job]:
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created)

    def cancel(self, job_id: str) -> Optional[Job]:
        job = self.get(job_id)
        if job is not None and job.state not in FINISHED:
            job.cancel_reason = job.cancel_reason or "cancelled"
            job.token.cancel()
            with self.lock:
                if job.state == "queued":  # never started: finished now
                    self._finish(job, "cancelled", error={"message": "cancelled", "field": None})
        return job

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Optional[Job]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while (job := self.jobs.get(job_id)) is not None and job.state not in FINISHED:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.changed.wait(left if left is not None else 1.0)
            return job

    def close(self) -> None:
        self._stop.set()
        for job in self.list():
            if job.state not in FINISHED:
                job.token.cancel()
        self.worker.join(10)

    # ------------------------------------------------------------------ worker
    def _finish(self, job: Job, state: str, *, result=None, error=None) -> None:
        job.state, job.finished, job.result, job.error = state, time.time(), result, error
        self._write(job)
        self.changed.notify_all()

    def _event(self, job: Job, event: Progress) -> None:
        with self.lock:
            job.events.append(event.to_json())
            self.changed.notify_all()

    def _work(self) -> None:
        from engine.jobs import generate_takes
        while not self._stop.is_set():
            try:
                job = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                if job.state != "queued":  # cancelled while it waited
                    continue
                job.state, job.started = "running", time.time()
                self._write(job)
                self.changed.notify_all()
            timer = threading.Timer(self.timeout, self._time_out, args=(job,))
            timer.daemon = True
            timer.start()
            try:
                report = generate_takes(job.take, pipeline=self.pipeline, cancel=job.token,
                                        progress=lambda event, job=job: self._event(job, event))
                outcome = ("done", report.to_json(), None)
            except Cancelled:
                outcome = ("cancelled", None, {"message": job.cancel_reason or "cancelled",
                                               "field": None})
            except UserError as err:
                outcome = ("failed", None, {"message": str(err), "field": err.field})
            except Exception as err:  # a bug: reported with its type, the service lives on
                outcome = ("failed", None, {"message": f"internal error: {type(err).__name__}: "
                                                       f"{err}", "field": None, "internal": True})
            finally:
                timer.cancel()
            with self.lock:
                self._finish(job, outcome[0], result=outcome[1], error=outcome[2])

    def _time_out(self, job: Job) -> None:
        job.cancel_reason = f"timed out after {self.timeout:g} s"
        job.token.cancel()


def _remove_partials(folder: Path) -> None:
    """Temporary files of an interrupted delivery (`.<name>.<random>.partial`, engine/atomic)."""
    if folder.is_dir():
        for path in folder.glob(".*.partial"):
            path.unlink(missing_ok=True)


__all__ = ["FINISHED", "Job", "JobManager", "MAX_PROMPT", "PathNotAllowed", "QueueFull", "STATES",
           "take_request"]
