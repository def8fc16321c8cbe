"""The engine's HTTP face (issue 15): FastAPI over one `JobManager`.

Every endpoint, the OpenAPI schema included, needs `Authorization: Bearer <token>`; the Host
header must name the loopback interface (a page in the editor's browser cannot reach us by DNS
rebinding); there is no CORS. Errors are JSON `{"detail": message, "field": name}`: 400 for a
request the user can fix, 403 for a path outside the allowed roots or a foreign Host, 401 for a
missing or wrong token, 404 for an unknown job or take, 422 for a body of the wrong shape, 429
when the queue is full.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import os
from pathlib import Path
from typing import Literal, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel

from engine.errors import UserError
from engine.service.jobs import FINISHED, JobManager, PathNotAllowed, QueueFull
from engine.service.schema import JobCreate, first_problem

API = "/v1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class JobState(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    created: float
    started: Optional[float] = None
    finished: Optional[float] = None
    request: dict
    progress: Optional[dict] = None
    result: Optional[dict] = None
    error: Optional[dict] = None


class Problem(BaseModel):
    detail: str
    field: Optional[str] = None


ERRORS = {400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": Problem},
          404: {"model": Problem}, 429: {"model": Problem}}


def _problem(status: int, detail: str, field: Optional[str] = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status)


def create_app(manager: JobManager, *, token: str, info: dict) -> FastAPI:
    """`info`: what `/v1/models` reports beside the live figures (bundle, device, licence)."""
    app = FastAPI(title="MF-MJT Foley engine", version=info.get("version", "0"),
                  openapi_url=None, docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = _host_name(request.headers.get("host") or "")
        if not info.get("allow_remote") and host not in LOOPBACK_HOSTS:
            return _problem(403, f"host {host!r} is not this engine's loopback address")
        supplied = request.headers.get("authorization") or ""
        if not (supplied.startswith("Bearer ")
                and hmac.compare_digest(supplied[7:].encode(), token.encode())):
            return _problem(401, "missing or wrong token; read it from the engine's token file")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def shape(request: Request, err: RequestValidationError):
        return _problem(422, *first_problem(err.errors()))

    @app.get("/openapi.json", include_in_schema=False)
    async def schema():
        return JSONResponse(app.openapi())

    @app.get(f"{API}/health", responses=ERRORS)
    async def health() -> dict:
        states = [j.state for j in manager.list()]
        return {"status": "ok", "pid": os.getpid(), "version": info.get("version"),
                "queued": states.count("queued"), "running": states.count("running")}

    @app.get(f"{API}/models", responses=ERRORS)
    async def models() -> dict:
        return {**{k: v for k, v in info.items() if k != "allow_remote"},
                "memory": _memory()}

    @app.post(f"{API}/jobs", status_code=202, response_model=JobState, responses=ERRORS)
    async def create(body: JobCreate):
        try:
            job = await asyncio.to_thread(manager.submit, body.model_dump())
        except QueueFull as err:
            return _problem(429, str(err))
        except PathNotAllowed as err:
            return _problem(403, str(err), err.field)
        except UserError as err:
            return _problem(400, str(err), err.field)
        return job.to_json()

    @app.get(f"{API}/jobs", response_model=list[JobState], responses=ERRORS)
    async def jobs():
        return [j.to_json() for j in manager.list()]

    @app.get(f"{API}/jobs/{{job_id}}", response_model=JobState, responses=ERRORS)
    async def job(job_id: str):
        found = manager.get(job_id)
        return found.to_json() if found else _problem(404, f"no job {job_id!r}")

    @app.post(f"{API}/jobs/{{job_id}}/cancel", response_model=JobState, responses=ERRORS)
    async def cancel(job_id: str):
        found = manager.cancel(job_id)
        return found.to_json() if found else _problem(404, f"no job {job_id!r}")

    @app.get(f"{API}/jobs/{{job_id}}/events", responses=ERRORS)
    async def events(job_id: str):
        found = manager.get(job_id)
        if found is None:
            return _problem(404, f"no job {job_id!r}")

        async def stream():
            sent = 0
            while True:
                pending, state = found.events[sent:], found.state
                for event in pending:
                    yield f"event: progress\ndata: {json.dumps(event)}\n\n"
                sent += len(pending)
                if state in FINISHED and sent == len(found.events):
                    yield f"event: {state}\ndata: {json.dumps(found.to_json())}\n\n"
                    return
                await asyncio.sleep(0.005)  # a list length read: cheap; 5 ms of latency at most
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @app.get(f"{API}/jobs/{{job_id}}/takes/{{take}}", responses={**ERRORS, 200: {
        "content": {"audio/wav": {}}}})
    async def take(job_id: str, take: int):
        found = manager.get(job_id)
        takes = (found.result or {}).get("takes", []) if found else []
        if not 1 <= take <= len(takes) or not Path(takes[take - 1]).is_file():
            return _problem(404, f"job {job_id!r} has no take {take}")
        return FileResponse(takes[take - 1], media_type="audio/wav",
                            filename=Path(takes[take - 1]).name)

    @app.get(f"{API}/cache", responses=ERRORS)
    async def cache() -> dict:
        return _cache_statistics(manager.pipeline)

    return app


def _host_name(header: str) -> str:
    """The name in a Host header, without the port ('[::1]:8000' -> '[::1]')."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0]


def _memory() -> dict:
    import resource
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mib": round(peak_kib / 1024, 1)}
    try:
        import torch
        if torch.cuda.is_available():
            out["cuda_allocated_mib"] = round(torch.cuda.memory_allocated() / 2 ** 20, 1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return out


def _cache_statistics(pipeline) -> dict:
    cache = getattr(pipeline, "feature_cache", None)
    if cache is None:
        return {"root": None, "entries": 0, "bytes": 0}
    files = [p for p in Path(cache.root).rglob("*") if p.is_file()] if Path(cache.root).exists() else []
    return {"root": str(cache.root), "entries": len(files),
            "bytes": sum(p.stat().st_size for p in files), "max_bytes": cache.max_bytes}


__all__ = ["API", "JobCreate", "create_app"]
