"""The `Engine` every front end talks to (issue 15; ARCHITECTURE.md): submit a job, follow its
progress, cancel it, fetch its takes. Two implementations behave the same (one contract test
suite runs against both):

- `InProcessEngine`: a `JobManager` in this process (tests, the panel without a service);
- `HttpEngine`: the running service over loopback HTTP, with the standard library only, so
  Blender's and Resolve's Python (no torch, no numpy, no requests) can import this module.

Importing this module imports nothing heavier than the standard library; `InProcessEngine`
imports the engine when it is created.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional, Protocol

FINISHED = ("done", "failed", "cancelled")


class EngineError(Exception):
    """The engine refused a request or could not be reached. `status` is the HTTP status (or
    the in-process equivalent); `field` names the request field at fault, when there is one."""

    def __init__(self, message: str, *, status: int = 0, field: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.field = field


class Engine(Protocol):
    def health(self) -> dict: ...
    def models(self) -> dict: ...
    def submit(self, request: dict) -> dict: ...
    def job(self, job_id: str) -> dict: ...
    def jobs(self) -> list[dict]: ...
    def cancel(self, job_id: str) -> dict: ...
    def events(self, job_id: str) -> Iterator[dict]: ...
    def wait(self, job_id: str, timeout: float = 600.0) -> dict: ...
    def take_bytes(self, job_id: str, take: int) -> bytes: ...


# ---------------------------------------------------------------------------- in process
class InProcessEngine:
    """The engine in this process: a `JobManager` over a loaded pipeline."""

    def __init__(self, bundle: str = "starter", *, device: str = "auto",
                 state_dir: Optional[Path] = None, roots: Optional[list[Path]] = None,
                 max_queue: int = 16, timeout: float = 600.0, pipeline=None):
        import tempfile

        from engine.jobs import load_pipeline
        from engine.service.jobs import JobManager
        from engine.service.server import default_roots
        self.pipeline = pipeline or load_pipeline(bundle, device=device)
        self.manager = JobManager(self.pipeline,
                                  state_dir=state_dir or Path(tempfile.mkdtemp(prefix="mfmjt-")),
                                  roots=roots or default_roots(), max_queue=max_queue,
                                  timeout=timeout)

    def health(self) -> dict:
        jobs = self.manager.list()
        return {"status": "ok", "queued": sum(j.state == "queued" for j in jobs),
                "running": sum(j.state == "running" for j in jobs)}

    def models(self) -> dict:
        bundle = self.pipeline.bundle
        return {"bundle": str(bundle.path), "network_sha256": bundle.network_sha256,
                "device": str(self.pipeline.device), "licence": bundle.manifest.get("licence")}

    def submit(self, request: dict) -> dict:
        from engine.errors import UserError
        from engine.service.jobs import PathNotAllowed, QueueFull
        body = _shaped(request)
        try:
            return self.manager.submit(body).to_json()
        except QueueFull as err:
            raise EngineError(str(err), status=429) from None
        except PathNotAllowed as err:
            raise EngineError(str(err), status=403, field=err.field) from None
        except UserError as err:
            raise EngineError(str(err), status=400, field=err.field) from None

    def job(self, job_id: str) -> dict:
        found = self.manager.get(job_id)
        if found is None:
            raise EngineError(f"no job {job_id!r}", status=404)
        return found.to_json()

    def jobs(self) -> list[dict]:
        return [j.to_json() for j in self.manager.list()]

    def cancel(self, job_id: str) -> dict:
        found = self.manager.cancel(job_id)
        if found is None:
            raise EngineError(f"no job {job_id!r}", status=404)
        return found.to_json()

    def events(self, job_id: str) -> Iterator[dict]:
        found = self.manager.get(job_id)
        if found is None:
            raise EngineError(f"no job {job_id!r}", status=404)
        sent = 0
        while True:
            with self.manager.lock:
                pending, state = list(found.events[sent:]), found.state
                if not pending and state not in FINISHED:
                    self.manager.changed.wait(0.5)
                    continue
            for event in pending:
                yield {"event": "progress", **event}
            sent += len(pending)
            if state in FINISHED and sent == len(found.events):
                yield {"event": state, "job": found.to_json()}
                return

    def wait(self, job_id: str, timeout: float = 600.0) -> dict:
        found = self.manager.wait(job_id, timeout)
        if found is None:
            raise EngineError(f"no job {job_id!r}", status=404)
        return found.to_json()

    def take_bytes(self, job_id: str, take: int) -> bytes:
        takes = (self.job(job_id).get("result") or {}).get("takes", [])
        if not 1 <= take <= len(takes) or not Path(takes[take - 1]).is_file():
            raise EngineError(f"job {job_id!r} has no take {take}", status=404)
        return Path(takes[take - 1]).read_bytes()

    def close(self) -> None:
        self.manager.close()


def _shaped(request: dict) -> dict:
    """The in-process engine accepts what the HTTP schema accepts, with the same defaults."""
    from pydantic import ValidationError

    from engine.service.schema import JobCreate, first_problem
    try:
        return JobCreate.model_validate(request).model_dump()
    except ValidationError as err:
        message, field = first_problem(err.errors())
        raise EngineError(message, status=422, field=field) from None


# ---------------------------------------------------------------------------- over HTTP
class HttpEngine:
    """The running service. `HttpEngine.discover()` reads the announcement a `mfmjt serve` wrote
    in the runtime folder; or give the url and token."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def discover(cls, folder: Optional[Path] = None) -> "HttpEngine":
        from engine.service.runtime import discover
        record = discover(folder)
        if record is None:
            raise EngineError("no engine is running; start one with `mfmjt serve`", status=0)
        return cls(record["url"], record["token"])

    def _open(self, method: str, path: str, body: Optional[dict] = None, *, timeout=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as err:
            try:
                problem = json.loads(err.read().decode())
            except ValueError:
                problem = {"detail": err.reason}
            raise EngineError(str(problem.get("detail")), status=err.code,
                              field=problem.get("field")) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            raise EngineError(f"the engine at {self.url} cannot be reached ({reason}); is "
                              f"`mfmjt serve` running?") from None

    def _json(self, method: str, path: str, body: Optional[dict] = None):
        with self._open(method, path, body) as response:
            return json.loads(response.read().decode())

    def health(self) -> dict:
        return self._json("GET", "/v1/health")

    def models(self) -> dict:
        return self._json("GET", "/v1/models")

    def submit(self, request: dict) -> dict:
        return self._json("POST", "/v1/jobs", request)

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def jobs(self) -> list[dict]:
        return self._json("GET", "/v1/jobs")

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/jobs/{job_id}/cancel")

    def events(self, job_id: str, timeout: float = 3600.0) -> Iterator[dict]:
        """Server-sent events, parsed line by line: progress events, then the final state."""
        with self._open("GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as response:
            name, data = None, []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and name:
                    payload = json.loads("\n".join(data)) if data else {}
                    if name == "progress":
                        yield {"event": "progress", **payload}
                    else:
                        yield {"event": name, "job": payload}
                        return
                    name, data = None, []

    def wait(self, job_id: str, timeout: float = 600.0) -> dict:
        """The job once finished (its event stream ends with it), or as it is after `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            for event in self.events(job_id, timeout=timeout):
                if event["event"] != "progress":
                    return event["job"]
        except EngineError as err:
            if err.status:  # refused (an unknown job): say so; a timeout falls through
                raise
        while time.monotonic() < deadline:
            state = self.job(job_id)
            if state["state"] in FINISHED:
                return state
            time.sleep(0.05)
        return self.job(job_id)

    def take_bytes(self, job_id: str, take: int) -> bytes:
        with self._open("GET", f"/v1/jobs/{job_id}/takes/{take}") as response:
            return response.read()


__all__ = ["Engine", "EngineError", "HttpEngine", "InProcessEngine"]
