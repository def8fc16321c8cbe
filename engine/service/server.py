"""`mfmjt serve`: the engine as a loopback HTTP service (uvicorn), announced for clients.

Binds 127.0.0.1 (another address only with `allow_remote`); a new random token per start,
written 0600; when ready, prints one JSON line on stdout with `url`, `token_file` and the rest of
the announcement, so scripts, the panel and host add-ons can start it and connect.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Optional


def default_roots() -> list[Path]:
    """Folders the engine may read media from and write takes to unless told otherwise: the
    user's home and the system's temporary folder."""
    return [Path.home(), Path(tempfile.gettempdir())]


def serve(*, port: int = 0, bundle: str = "starter", device: str = "auto", host: str = "127.0.0.1",
          allow_remote: bool = False, roots: Optional[list[Path]] = None,
          runtime: Optional[Path] = None, max_queue: int = 16, timeout: float = 600.0) -> int:
    import uvicorn

    from engine import __version__
    from engine.jobs import load_pipeline
    from engine.service.app import create_app
    from engine.service.jobs import JobManager
    from engine.service.runtime import announce, new_token, runtime_dir, withdraw

    if host not in ("127.0.0.1", "::1", "localhost") and not allow_remote:
        raise SystemExit(f"error: {host} is not a loopback address; the engine listens on "
                         f"127.0.0.1 unless started with --allow-remote")
    if allow_remote:
        warnings.warn(f"the engine listens on {host}: anyone who can reach it and has the token "
                      f"can read and write files under its roots", stacklevel=2)
    folder = runtime or runtime_dir()
    pipeline = load_pipeline(bundle, device=device)  # loaded once, kept warm
    manager = JobManager(pipeline, state_dir=folder, roots=roots or default_roots(),
                         max_queue=max_queue, timeout=timeout)
    token, token_file = new_token(folder)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections queue from now on: the announcement below is true at once
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
    info = {"version": __version__, "bundle": str(pipeline.bundle.path),
            "network_sha256": pipeline.bundle.network_sha256, "device": str(pipeline.device),
            "licence": pipeline.bundle.manifest.get("licence"), "allow_remote": allow_remote,
            "roots": [str(r) for r in manager.roots]}
    app = create_app(manager, token=token, info=info)
    record = {"url": url, "port": bound, "pid": os.getpid(), "token_file": str(token_file),
              "bundle": info["bundle"], "device": info["device"],
              "interrupted_jobs": manager.interrupted}
    announce(record, folder)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print(json.dumps(record), flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        withdraw(os.getpid(), folder)
        manager.close()
    return 0


if __name__ == "__main__":  # pragma: no cover - `mfmjt serve` is the entry point
    sys.exit(serve())
