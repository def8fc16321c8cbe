"""Running the seam's requests on a running `mfmjt serve` instead of in this process (`--engine
URL|auto` of `generate` and `timeline foley`)."""
from __future__ import annotations

from typing import Callable, Optional


def connect(engine: str):
    """An HTTP engine: `auto` is the one announced in this user's runtime folder; a URL is used
    with that announcement's token (this user, this machine)."""
    from engine.client import HttpEngine
    from engine.errors import UserError
    from engine.service.runtime import discover
    record = discover()
    if engine == "auto":
        if record is None:
            raise UserError("no engine is running; start one with `mfmjt serve`", field="engine")
        return HttpEngine(record["url"], record["token"])
    return HttpEngine(engine, record["token"] if record else "")


def run_job(client, request, *, progress: Optional[Callable] = None) -> dict:
    """Submit the request as a job, follow its events (to `progress` as `Progress`), and return
    its result; a refusal or a failed job is a UserError, Ctrl-C cancels the job there too."""
    from engine.cancel import Progress
    from engine.client import EngineError
    from engine.errors import UserError
    from engine.jobs import service_body
    job, final = None, None
    try:
        job = client.submit(service_body(request))
        for event in client.events(job["id"]):
            if event["event"] == "progress":
                if progress is not None:
                    progress(Progress(event["stage"], event["done"], event["total"]))
            else:
                final = event["job"]
    except KeyboardInterrupt:
        if job is not None:
            client.cancel(job["id"])
        raise
    except EngineError as err:
        raise UserError(str(err), field=err.field) from None
    if final is None or final["state"] != "done":
        error = (final or {}).get("error") or {}
        raise UserError(f"the engine's job {(final or {}).get('state', 'ended')}: "
                        f"{error.get('message', 'no result')}", field=error.get("field"))
    return final["result"]
