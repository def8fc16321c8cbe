"""`make bench`: network time of one-step MF-MJT vs 25-step MMAudio-style sampling.

For `small_16k` (random weights: timing does not depend on values) and 8 s of audio:
  - one step, CFG-scaled, conditional + unconditional batched in one forward (MF-MJT);
  - 25 Euler steps, standard CFG, two forwards per step (MMAudio's sampler).
Each case runs in a fresh process so its peak memory is its own. Medians of repeated runs.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    # one plain forward at batch 1: the machine-speed yardstick MODEL.md §6 quotes (0.235 s there)
    "network_forward_b1": dict(steps=1, sampler="euler", mode="none", batched=True),
    "meanflow_1step_cfg_batched": dict(steps=1, sampler="meanflow", mode="scaled", batched=True),
    # bf16 autocast: on CUDA, and on CPUs with AVX512-BF16 / AMX (this dev CPU has AVX512-BF16)
    "meanflow_1step_cfg_batched_bf16": dict(steps=1, sampler="meanflow", mode="scaled",
                                            batched=True, autocast=True),
    "fm_euler_25step_cfg_unbatched": dict(steps=25, sampler="euler", mode="standard",
                                          batched=False),
}


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_case(name: str, preset: str, duration: float, repeats: int, device_name: str) -> dict:
    import torch

    from engine.model import build_network
    from engine.sampling import (draw_noise, euler_sample, guided_velocity, meanflow_sample,
                                 time_grid)

    case = CASES[name]
    device = torch.device(device_name)
    torch.manual_seed(0)
    net = build_network(preset).eval()
    with torch.no_grad():  # non-zero weights everywhere, so outputs (and bf16 errors) mean something
        for param in net.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.02)
    net = net.to(device)
    cfg = net.config
    lengths = cfg.lengths(duration)
    gen = torch.Generator().manual_seed(0)
    clip = torch.randn(1, lengths.clip, cfg.clip_dim, generator=gen).to(device)
    sync = torch.randn(1, lengths.sync, cfg.sync_dim, generator=gen).to(device)
    text = torch.randn(1, cfg.text_seq_len, cfg.text_dim, generator=gen).to(device)
    sampler = meanflow_sample if case["sampler"] == "meanflow" else euler_sample
    omega = 1.5 if case["sampler"] == "meanflow" else 4.5  # paper / MMAudio defaults
    if case["mode"] == "none":
        omega = 1.0

    def generate():
        cond = net.preprocess_conditions(clip, sync, text)
        empty = net.empty_conditions(1, clip_len=lengths.clip, sync_len=lengths.sync)
        velocity = guided_velocity(net, cond, empty, omega=omega, mode=case["mode"],
                                   batched=case["batched"])
        noise = draw_noise((1, lengths.latent, cfg.latent_dim), torch.Generator().manual_seed(1),
                           device=device)
        return sampler(velocity, noise, time_grid(case["steps"]))

    def timed_generate():
        if case.get("autocast"):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return generate()
        return generate()

    times = []
    with torch.inference_mode():
        reference = generate().float()  # warm-up, and the fp32 result for the error figure
        output = timed_generate().float()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            timed_generate()
            _sync(device)
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    rel_err = ((output - reference).pow(2).mean() / reference.pow(2).mean()).sqrt().item()
    return {"case": name, **case, "preset": preset, "relative_rms_error_vs_fp32": rel_err, "duration_s": duration, "repeats": repeats,
            "median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "peak_memory_mb": peak / 2**20,
            "peak_memory_kind": "cuda allocated" if device.type == "cuda" else "process max RSS"}


MEDIA_CASE = "media_decode_starter_10s_1080p"


def _write_test_clip(path: Path, seconds: int = 10, fps: int = 25) -> None:
    """A 1080p H.264 clip with full-frame motion (moving noise: the worst case for the decoder)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        base = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
        for k in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 8 * k, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def run_media_case(repeats: int) -> dict:
    """Decode 8 fps + 25 fps frames of a 10 s 1080p clip and run the starter encoders."""
    import tempfile

    from engine.features import StarterEncoder
    from engine.media import decode_frames

    encoder = StarterEncoder()
    times, decode_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        clip_path = Path(tmp) / "clip.mp4"
        _write_test_clip(clip_path)
        for _ in range(repeats + 1):  # first run is a warm-up
            start = time.perf_counter()
            clip, sync = decode_frames(clip_path, 0, 10)
            decoded = time.perf_counter()
            encoder.encode_video(clip, sync)
            times.append(time.perf_counter() - start)
            decode_times.append(decoded - start)
    times, decode_times = times[1:], decode_times[1:]
    return {"case": MEDIA_CASE, "repeats": repeats, "median_s": statistics.median(times),
            "min_s": min(times), "times_s": times,
            "decode_median_s": statistics.median(decode_times),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_memory_kind": "process max RSS"}


STARTER_CASE = "starter_demo_regenerate"
OFFICIAL_CASE = "official_end_to_end"
SERVICE_CASE = "service_demo_regenerate"


def run_starter_case(repeats: int) -> dict:
    """The shipped starter model on the 6 s demo clip, one take, its default settings (one step,
    CFG-scaled): a cold first request (decode + features) and warm regenerations with new seeds
    (features from the on-disk cache), network + codec included."""
    import tempfile

    from engine.features.cache import FeatureCache
    from engine.paths import starter_bundle_dir
    from engine.pipeline import FoleyPipeline, GenerateRequest

    clip = starter_bundle_dir().parent / "demo" / "demo.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = FoleyPipeline(starter_bundle_dir(), feature_cache=FeatureCache(tmp))
        start = time.perf_counter()
        pipeline.generate(GenerateRequest(media=clip, seed=0))
        cold = time.perf_counter() - start
        times = []
        for seed in range(1, repeats + 1):
            start = time.perf_counter()
            pipeline.generate(GenerateRequest(media=clip, seed=seed))
            times.append(time.perf_counter() - start)
    return {"case": STARTER_CASE, "repeats": repeats, "cold_s": cold,
            "median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "settings": pipeline.settings(GenerateRequest(media=clip)),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_service_case(repeats: int) -> dict:
    """Regenerating the demo's take (features cached, WAV written, no preview) in this process
    through the seam, then as jobs of a real `mfmjt serve` over loopback HTTP: the service's
    overhead per job is the difference of the medians (issue 15: <= 20 ms; through HTTP
    <= 0.35 s)."""
    import os
    import tempfile

    from engine.client import HttpEngine
    from engine.jobs import TakeRequest, generate_takes, load_pipeline
    from engine.paths import starter_bundle_dir

    clip = starter_bundle_dir().parent / "demo" / "demo.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MFMJT_CACHE_DIR"] = str(tmp / "cache")
        pipeline = load_pipeline("starter")
        local = []
        for seed in range(repeats + 1):
            start = time.perf_counter()
            generate_takes(TakeRequest(media=clip, out=tmp / "local", seed=seed, preview=False),
                           pipeline=pipeline)
            local.append(time.perf_counter() - start)
        env = {**os.environ, "MFMJT_RUNTIME_DIR": str(tmp / "runtime")}
        service = subprocess.Popen(
            [sys.executable, "-m", "mfmjt_plugin.cli", "serve", "--allow-root", str(tmp),
             "--allow-root", str(clip.parent)], env=env, stdout=subprocess.PIPE, text=True)
        try:
            record = json.loads(service.stdout.readline())
            engine = HttpEngine(record["url"], Path(record["token_file"]).read_text().strip())
            remote = []
            for seed in range(repeats + 1):
                start = time.perf_counter()
                job = engine.submit({"media": str(clip), "out": str(tmp / "served"),
                                     "seed": seed})
                state = engine.wait(job["id"], 120)
                remote.append(time.perf_counter() - start)
                assert state["state"] == "done", state
        finally:
            service.terminate()
            service.wait(30)
    local, remote = local[1:], remote[1:]  # the first of each fills the caches
    return {"case": SERVICE_CASE, "repeats": repeats,
            "in_process_median_s": statistics.median(local),
            "http_median_s": statistics.median(remote),
            "overhead_ms": 1000 * (statistics.median(remote) - statistics.median(local)),
            "in_process_s": local, "http_s": remote}


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name and whether it computes bf16 natively: runs on hosts that differ in
    these are not comparable (the bf16 case took 0.45 s on a host with avx512_bf16, 38.7 s on one
    without)."""
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    return f"{name}, {platform.machine()}, bf16: {'+'.join(native) if native else 'emulated'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small_16k")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--out", type=Path, default=Path("docs/PERFORMANCE.json"))
    parser.add_argument("--table", type=Path, default=Path("docs/PERFORMANCE.md"))
    parser.add_argument("--official", choices=["auto", "yes", "no"], default="auto",
                        help="the official stack end to end (auto: when torch sees a CUDA GPU)")
    parser.add_argument("--case", choices=sorted(CASES) + [MEDIA_CASE, STARTER_CASE, SERVICE_CASE,
                                                           OFFICIAL_CASE],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.case == MEDIA_CASE:
        print(json.dumps(run_media_case(args.repeats)))
        return 0
    if args.case == STARTER_CASE:
        print(json.dumps(run_starter_case(args.repeats)))
        return 0
    if args.case == SERVICE_CASE:
        print(json.dumps(run_service_case(args.repeats)))
        return 0
    if args.case == OFFICIAL_CASE:
        import tempfile

        from engine.benchmark_official import run_official_case
        with tempfile.TemporaryDirectory() as tmp:
            clip = Path(tmp) / "clip_1080p.mp4"
            _write_test_clip(clip, seconds=int(args.duration) + 1)
            print(json.dumps(run_official_case(args.preset, clip, seconds=args.duration,
                                               repeats=args.repeats, device=device)))
        return 0
    if args.case:  # child process: one case, JSON on stdout
        print(json.dumps(run_case(args.case, args.preset, args.duration, args.repeats, device)))
        return 0

    from tqdm import tqdm
    results = []
    for name in tqdm(CASES, desc="benchmark cases", unit="case"):
        repeats = args.repeats if CASES[name]["steps"] == 1 else max(1, (args.repeats + 1) // 2)
        out = subprocess.run([sys.executable, "-m", "engine.benchmark", "--case", name,
                              "--preset", args.preset, "--duration", str(args.duration),
                              "--repeats", str(repeats), "--device", device],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    out = subprocess.run([sys.executable, "-m", "engine.benchmark", "--case", MEDIA_CASE,
                          "--repeats", str(max(3, args.repeats // 2 + 1))],
                         capture_output=True, text=True, check=True)
    media = json.loads(out.stdout.strip().splitlines()[-1])
    out = subprocess.run([sys.executable, "-m", "engine.benchmark", "--case", STARTER_CASE,
                          "--repeats", str(args.repeats)], capture_output=True, text=True,
                         check=True)
    starter = json.loads(out.stdout.strip().splitlines()[-1])
    out = subprocess.run([sys.executable, "-m", "engine.benchmark", "--case", SERVICE_CASE,
                          "--repeats", str(max(5, args.repeats))], capture_output=True, text=True,
                         check=True)
    service = json.loads(out.stdout.strip().splitlines()[-1])
    official = []
    if args.official == "yes" or (args.official == "auto" and device.startswith("cuda")):
        from engine.benchmark_official import OFFICIAL_PRESETS
        for preset in OFFICIAL_PRESETS:  # a fresh process each: its own peak memory
            out = subprocess.run([sys.executable, "-m", "engine.benchmark", "--case",
                                  OFFICIAL_CASE, "--preset", preset, "--duration",
                                  str(args.duration), "--repeats", str(max(3, args.repeats // 2)),
                                  "--device", device], capture_output=True, text=True)
            if out.returncode:  # e.g. a preset larger than the GPU: say so, measure the others
                reason = (out.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"official {preset}: not measured ({reason})", file=sys.stderr)
                official.append({"case": f"{OFFICIAL_CASE}_{preset}", "preset": preset,
                                 "device": device, "failed": reason[:300]})
                continue
            official.append(json.loads(out.stdout.strip().splitlines()[-1]))
    by_name = {r["case"]: r for r in results}
    one = by_name["meanflow_1step_cfg_batched"]
    many = by_name["fm_euler_25step_cfg_unbatched"]
    report = {
        "device": (torch.cuda.get_device_name(0) if device == "cuda"
                   else f"cpu ({cpu_description()}, {torch.get_num_threads()} threads)"),
        "torch": torch.__version__, "results": results, "media": media, "starter": starter,
        "service": service, "official": official,
        "speedup_25step_over_1step": many["median_s"] / one["median_s"],
        "one_step_cfg_over_single_forward": one["median_s"] / by_name["network_forward_b1"]["median_s"],
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.table.write_text(render_table(report))
    print(render_table(report))
    return 0


def render_table(report: dict) -> str:
    lines = ["# Performance", "",
             "Generated by `make bench` (engine/benchmark.py); network time only (features given, "
             "no codec), random N(0, 0.02) weights, batch 1.", "",
             f"Device: {report['device']}; torch {report['torch']}; {report['date']}.", "",
             "| case | steps | CFG | network passes | median s | min s | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        passes = r["steps"] * (1 if r["batched"] or r["mode"] == "none" else 2)
        cfg = f"{r['mode']}, {'batched' if r['batched'] else 'two passes'}"
        if r.get("autocast"):
            cfg += f", bf16 (rel. RMS error vs fp32 {r['relative_rms_error_vs_fp32']:.1e})"
        lines.append(f"| {r['case']} ({r['preset']}, {r['duration_s']:g} s) | {r['steps']} | {cfg} "
                     f"| {passes} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                     f"{r['peak_memory_mb']:.0f} ({r['peak_memory_kind']}) |")
    lines += ["", f"25-step / 1-step (medians, one run): "
                  f"**{report['speedup_25step_over_1step']:.1f}x**", "",
              f"One-step with batched CFG / one plain batch-1 forward: "
              f"{report['one_step_cfg_over_single_forward']:.2f}x", "",
              "## Media: decode + starter encoders", "",
              "| case | median s | decode median s | min s | peak MB |", "|---|---|---|---|---|",
              f"| 10 s of 1080p25 H.264 -> 80 CLIP frames (384 px) + 250 sync frames (224 px), "
              f"starter encoders | {report['media']['median_s']:.2f} | "
              f"{report['media']['decode_median_s']:.2f} | {report['media']['min_s']:.2f} | "
              f"{report['media']['peak_memory_mb']:.0f} |", "",
              "## The starter model end to end (demo clip, 6 s, one take)", "",
              "| request | median s | min s | peak MB |", "|---|---|---|---|",
              f"| regenerate with a new seed (features cached), {report['starter']['settings']} "
              f"| {report['starter']['median_s']:.3f} | {report['starter']['min_s']:.3f} | "
              f"{report['starter']['peak_memory_mb']:.0f} |",
              f"| first request (decode + features + generation) | "
              f"{report['starter']['cold_s']:.3f} | | |", "",
              "## The engine service (`mfmjt serve`, loopback HTTP)", "",
              "Regenerate the demo's take with a new seed (features cached, one WAV written, no "
              "preview), in this process through the seam and as a job of the service "
              "(submit + wait), medians of one run:", "",
              "| in process s | through HTTP s | service overhead per job ms |", "|---|---|---|",
              f"| {report['service']['in_process_median_s']:.3f} | "
              f"{report['service']['http_median_s']:.3f} | "
              f"{report['service']['overhead_ms']:.1f} |", "",
              "Targets (issue 15): overhead <= 20 ms; through HTTP <= 0.35 s.", "",
              "Targets on the 2-core development CPU: one-step with CFG <= 0.6 s; ratio >= 20; "
              "decode + starter encoders for 10 s of 1080p <= 2 s. "
              "MODEL.md §6 measured MMAudio's own small_16k forward at 0.235 s (batch 1) on that "
              "CPU; `network_forward_b1` is the same computation (bit-identical to the reference) "
              "and shows how this machine compares.", ""]
    if report.get("official"):
        from engine.benchmark_official import render_official_rows
        lines += render_official_rows(report["official"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
