"""The local engine service (issue 15), started for real (`python -m mfmjt_plugin.cli serve`) on
an ephemeral loopback port with a small bundle, and the one contract suite that the in-process
engine and the standard-library HTTP client both pass."""
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine.client import EngineError, HttpEngine, InProcessEngine
from engine.pipeline import FoleyPipeline
from tests.test_pipeline import bundle  # noqa: F401  (fixture)
from trainer.synth.scene import sample_scene
from trainer.synth.writer import write_scene

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The folder the engine may use, with a 3 s movie in it."""
    root = tmp_path_factory.mktemp("served")
    scene = sample_scene(3, namespace="test", duration=3.0, sound_class="clap")
    movie = write_scene(scene, root / "media")["video"]
    return root, movie


def start_service(bundle, root: Path, *extra: str, runtime: Path):  # noqa: F811
    env = {**os.environ, "MFMJT_RUNTIME_DIR": str(runtime), "MFMJT_CACHE_DIR": str(root / "cache"),
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mfmjt_plugin.cli", "serve", "--bundle", str(bundle),
         "--allow-root", str(root), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # the one JSON line, printed when ready
    if not line:
        raise AssertionError(f"the service did not start: {process.stderr.read()}")
    record = json.loads(line)
    return process, record


def stop(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def served(bundle, world, tmp_path_factory):  # noqa: F811
    root, _ = world
    runtime = tmp_path_factory.mktemp("runtime")
    process, record = start_service(bundle, root, "--max-queue", "4", runtime=runtime)
    yield record, runtime
    stop(process)


@pytest.fixture(scope="module", params=["in-process", "http"])
def engine(request, bundle, world, served, tmp_path_factory):  # noqa: F811
    root, _ = world
    if request.param == "http":
        record, runtime = served
        yield HttpEngine.discover(runtime)
        return
    local = InProcessEngine(pipeline=FoleyPipeline(bundle), roots=[root],
                            state_dir=tmp_path_factory.mktemp("state"), max_queue=4)
    yield local
    local.close()


def _job(world, folder: str, **settings) -> dict:
    root, movie = world
    return {"media": str(movie), "out": str(root / folder), **settings}


# ---------------------------------------------------------------------------- the contract
def test_a_job_delivers_its_takes_with_their_provenance(engine, world):
    submitted = engine.submit(_job(world, f"takes-{type(engine).__name__}", takes=2, seed=5))
    assert submitted["state"] in ("queued", "running")
    final = engine.wait(submitted["id"], 120)
    assert final["state"] == "done", final["error"]
    takes = final["result"]["takes"]
    assert [Path(t).name.split("_take")[1] for t in takes] == ["1_v001.wav", "2_v001.wav"]
    assert [d["seed"] for d in final["result"]["take_details"]] == [5, 6]
    data = engine.take_bytes(submitted["id"], 2)
    assert data[:4] == b"RIFF" and data == Path(takes[1]).read_bytes()
    assert final["result"]["provenance"]["network_sha256"] == engine.models()["network_sha256"]
    with pytest.raises(EngineError) as missing:
        engine.take_bytes(submitted["id"], 3)
    assert missing.value.status == 404
    assert any(j["id"] == submitted["id"] for j in engine.jobs())


def test_progress_events_arrive_in_stage_order_then_the_final_state(engine, world):
    submitted = engine.submit(_job(world, f"events-{type(engine).__name__}", steps=2))
    events = list(engine.events(submitted["id"]))
    stages = [e["stage"] for e in events if e["event"] == "progress"]
    order = ["features", "sampling", "decoding", "writing"]
    assert sorted(set(stages), key=stages.index) == order
    # sampling and decoding interleave per window; features come first, writing last
    assert stages[0] == "features" and stages[-1] == "writing"
    assert events[-1]["event"] == "done" and events[-1]["job"]["state"] == "done"


def test_a_cancel_mid_decode_stops_the_job_and_leaves_no_take(engine, world):
    root, _ = world
    folder = f"cancel-{type(engine).__name__}"
    submitted = engine.submit(_job(world, folder, takes=16))
    for event in engine.events(submitted["id"]):
        if event["event"] == "progress" and event["stage"] == "decoding":
            engine.cancel(submitted["id"])
            break
    final = engine.wait(submitted["id"], 60)
    assert final["state"] == "cancelled"
    assert not (root / folder).exists() or list((root / folder).iterdir()) == []


def test_bad_requests_are_refused_with_their_reason_and_create_no_job(engine, world):
    root, movie = world
    before = len(engine.jobs())
    cases = [
        ({"media": str(root / "missing.mp4"), "out": str(root / "bad")}, 400, "media"),
        (_job(world, "bad", end=60.0), 400, "media"),
        (_job(world, "bad", steps=0), 422, "steps"),
        (_job(world, "bad", takes=100), 422, "takes"),
        (_job(world, "bad", prompt="x" * 10_000_000), 422, "prompt"),
        ({"media": "/etc/hostname", "out": str(root / "bad")}, 403, "media"),
        (_job(world, "bad", colour="red"), 422, "colour"),
        ({"out": str(root / "bad")}, 422, "media"),
    ]
    for body, status, field in cases:
        with pytest.raises(EngineError) as refused:
            engine.submit(body)
        assert (refused.value.status, refused.value.field) == (status, field), str(refused.value)
        assert len(str(refused.value)) < 300  # a line, not the 10 MB prompt echoed back
    assert len(engine.jobs()) == before
    assert not (root / "bad").exists()


# ---------------------------------------------------------------------------- HTTP only
def _raw(url: str, path: str, *, token=None, host=None, body: bytes = None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if host is not None:
        headers["Host"] = host
    request = urllib.request.Request(url + path, data=body, headers=headers,
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_every_endpoint_needs_the_token_and_a_loopback_host(served, world):
    record, runtime = served
    engine = HttpEngine.discover(runtime)
    url, token = record["url"], engine.token
    assert (Path(record["token_file"]).stat().st_mode & 0o777) == 0o600
    body = json.dumps(_job(world, "auth")).encode()
    before = len(engine.jobs())
    for path in ("/openapi.json", "/v1/health", "/v1/jobs", "/v1/models", "/v1/cache"):
        assert _raw(url, path)[0] == 401
        assert _raw(url, path, token="wrong")[0] == 401
        assert _raw(url, path, token=token, host="attacker.example")[0] == 403
        assert _raw(url, path, token=token)[0] == 200
    assert _raw(url, "/v1/jobs", body=body)[0] == 401
    assert _raw(url, "/v1/jobs", token="wrong", body=body)[0] == 401
    assert _raw(url, "/v1/jobs", token=token, host="rebound.example:80", body=body)[0] == 403
    status, answer = _raw(url, "/v1/jobs", token=token, body=b"\xff\xfe not json")
    assert status == 400 and json.loads(answer)["detail"]  # invalid UTF-8: refused, in words
    assert len(engine.jobs()) == before
    assert not (world[0] / "auth").exists()
    assert record["url"].startswith("http://127.0.0.1:")


def test_fifty_concurrent_submissions_complete_or_get_429_and_none_is_lost(served, world):
    record, runtime = served
    engine = HttpEngine.discover(runtime)
    accepted, refused, errors = [], [], []
    before = engine.models()["memory"]["peak_rss_mib"]

    def submit(k):
        try:
            accepted.append(engine.submit(_job(world, f"burst/{k}", seed=k))["id"])
        except EngineError as err:
            (refused if err.status == 429 else errors).append(err)
    threads = [threading.Thread(target=submit, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(accepted) + len(refused) == 50
    assert accepted and refused  # a queue of 4 cannot take 50 at once
    finals = [engine.wait(job_id, 300) for job_id in accepted]
    assert [f["state"] for f in finals] == ["done"] * len(accepted)
    assert all(Path(f["result"]["takes"][0]).is_file() for f in finals)
    # bounded: the burst (50 requests, at most 4 waiting) leaves the engine's peak memory about
    # where one job had it
    peak = engine.models()["memory"]["peak_rss_mib"]
    assert peak - before < 1000, f"peak RSS {before} -> {peak} MiB over the burst"


def test_the_served_schema_survives_schemathesis_without_a_server_error(served, tmp_path):
    record, runtime = served
    token = HttpEngine.discover(runtime).token
    result = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run",
         f"{record['url']}/openapi.json", "--header", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error", "--max-examples", "15", "--seed", "1",
         "--workers", "1", "--request-timeout", "20"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays there
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "/v1/jobs" in result.stdout


def test_a_killed_service_reports_its_running_job_failed_and_leaves_no_partial_file(
        bundle, world, tmp_path):  # noqa: F811
    root, _ = world
    runtime = tmp_path / "runtime"
    process, record = start_service(bundle, root, runtime=runtime)
    engine = HttpEngine.discover(runtime)
    folder = root / "killed"
    submitted = engine.submit(_job(world, "killed", steps=800, takes=4))
    for event in engine.events(submitted["id"]):
        if event["event"] == "progress" and event["stage"] == "sampling":
            break
    process.kill()  # kill -9: no cleanup runs
    process.wait()
    # what a kill during writing leaves: an atomic write's temporary file (engine/atomic.py)
    folder.mkdir(exist_ok=True)
    (folder / ".cam_foley_take1_v001.wav.x1y2.partial").write_bytes(b"half a take")
    again, record = start_service(bundle, root, runtime=runtime)
    try:
        assert record["interrupted_jobs"] == [submitted["id"]]
        state = HttpEngine.discover(runtime).job(submitted["id"])
        assert state["state"] == "failed" and "stopped while this job ran" in state["error"]["message"]
        partial = [p for p in folder.rglob("*")] if folder.exists() else []
        assert partial == []
    finally:
        stop(again)


def test_no_engine_running_is_one_clear_error(tmp_path):
    with pytest.raises(EngineError, match="no engine is running; start one with `mfmjt serve`"):
        HttpEngine.discover(tmp_path)
    with pytest.raises(EngineError, match="cannot be reached"):
        HttpEngine("http://127.0.0.1:9", "token").health()


def test_the_http_client_imports_only_the_standard_library():
    code = ("import sys; import engine.client; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'numpy', 'fastapi', 'uvicorn', 'opentimelineio', 'av', 'pydantic')); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_mfmjt_generate_runs_on_the_service_when_asked(served, world, bundle, capsys,  # noqa: F811
                                                      monkeypatch):
    """`--engine auto` finds the announced service; its take equals the in-process one."""
    from engine.media.bwf import read_bwf
    from mfmjt_plugin.cli import main
    record, runtime = served
    root, movie = world
    monkeypatch.setenv("MFMJT_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("MFMJT_CACHE_DIR", str(root / "cache-cli"))
    common = ["generate", str(movie), "--bundle", str(bundle), "--seed", "9", "--end", "2",
              "--no-preview", "--json"]
    assert main([*common, "--out", str(root / "via-service"), "--engine", "auto"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main([*common, "--out", str(root / "in-process")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert Path(remote["takes"][0]).parent == root / "via-service"
    assert remote["provenance"] == local["provenance"]
    assert (read_bwf(remote["takes"][0]).samples == read_bwf(local["takes"][0]).samples).all()
    monkeypatch.setenv("MFMJT_RUNTIME_DIR", str(root / "nothing-announced"))
    assert main([*common, "--out", str(root / "x"), "--engine", "auto"]) == 1
    assert capsys.readouterr().err == ("error: no engine is running; start one with `mfmjt "
                                       "serve` (--engine)\n")


def test_a_job_past_its_timeout_is_cancelled_and_says_so(bundle, world, tmp_path):  # noqa: F811
    root, _ = world
    local = InProcessEngine(pipeline=FoleyPipeline(bundle), roots=[root], state_dir=tmp_path,
                            timeout=0.5)
    try:
        job = local.submit(_job(world, "slow", steps=1000, takes=8))
        final = local.wait(job["id"], 120)
    finally:
        local.close()
    assert final["state"] == "cancelled" and final["error"]["message"] == "timed out after 0.5 s"
    assert not (root / "slow").exists() or list((root / "slow").iterdir()) == []


def test_a_job_survives_its_client_going_away(served, world):
    """The panel closing its progress stream (or crashing) does not stop the job."""
    record, runtime = served
    engine = HttpEngine.discover(runtime)
    job = engine.submit(_job(world, "orphan", steps=40, takes=2))
    stream = engine.events(job["id"])
    assert next(stream)["event"] == "progress"
    stream.close()  # the connection goes; the job does not
    final = HttpEngine.discover(runtime).wait(job["id"], 120)
    assert final["state"] == "done" and len(final["result"]["takes"]) == 2


def test_timeline_foley_delivers_the_same_timeline_through_the_service(served, world, bundle,  # noqa: F811
                                                                       capsys, monkeypatch):
    """`timeline foley --engine auto`: each segment a job with the timeline's names, handles and
    time of day; the delivered takes and clip metadata equal the in-process run's."""
    import opentimelineio as otio

    from engine.media.bwf import read_bwf
    from mfmjt_plugin.cli import main
    record, runtime = served
    root, movie = world
    monkeypatch.setenv("MFMJT_RUNTIME_DIR", str(runtime))
    rate = 24
    clip = otio.schema.Clip(name="shot", media_reference=otio.schema.ExternalReference(
        target_url=movie.resolve().as_uri(), available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(72, rate))),
        source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(30, rate),
                                             otio.opentime.RationalTime(30, rate)))
    timeline = otio.schema.Timeline(name="reel", global_start_time=otio.opentime.from_timecode(
        "01:00:00:00", rate))
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(12, rate))))
    track.append(clip)
    timeline.tracks.append(track)
    source = root / "reel.otio"
    otio.adapters.write_to_file(timeline, str(source))
    results = {}
    for name, extra in (("served", ["--engine", "auto"]), ("local", [])):
        assert main(["timeline", "foley", str(source), "--clip", "shot", "--bundle", str(bundle),
                     "--takes", "2", "--seed", "4", "--media-out", str(root / f"tl-{name}"),
                     "--timeline-out", str(root / f"tl-{name}"), "--json", *extra]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    served_takes, local_takes = results["served"]["takes"], results["local"]["takes"]
    assert [Path(t["wav"]).name for t in served_takes] == [Path(t["wav"]).name for t in local_takes]
    for a, b in zip(served_takes, local_takes):
        wav_a, wav_b = read_bwf(a["wav"]), read_bwf(b["wav"])
        assert (wav_a.samples == wav_b.samples).all()
        assert wav_a.bext["time_reference"] == wav_b.bext["time_reference"]
    placed = {name: [dict(c.metadata["mfmjt"]) for c in otio.adapters.read_from_file(
        r["timeline"]).find_clips() if "mfmjt" in c.metadata] for name, r in results.items()}
    assert placed["served"] == placed["local"] and len(placed["served"]) == 2
