"""`mfmjt demo`: the product end to end on the embedded starter model, no downloads.

The bundled demo clip (a synth scene the model never saw, engine/assets/demo/) -> one-step
CFG-scaled generation at the bundle's default guidance -> a 48 kHz / 24-bit Broadcast WAV take and
a preview movie, under new versioned names. `--toy` runs the older 2-D illustration instead
(MeanFlow vs flow matching in one step, trained on the spot).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent.parent / "engine" / "assets" / "demo"
DEMO_CLIP = DEMO_DIR / "demo.mp4"


def run(out: Path | str = "demo-output", seed: int = 0, device: str = "auto") -> int:
    began = time.perf_counter()
    from mfmjt_plugin.generate_cli import generate, take_request
    events = json.loads(DEMO_CLIP.with_suffix(".json").read_text())
    contacts = ", ".join(f"{e['time']:.2f}" for e in events["events"])
    print(f"MF-MJT demo: {DEMO_CLIP.name} ({events['duration']:g} s, {events['sound_class']}, "
          f"contacts at {contacts} s) on the starter model")
    from engine.errors import UserError
    from mfmjt_plugin.cli_types import os_error_line, user_error_line
    try:
        report = generate(take_request(DEMO_CLIP, out=Path(out), seed=seed, bundle="starter",
                                       device=device))
    except UserError as err:
        print(user_error_line(err, {"out": "--out", "seed": "--seed", "device": "--device"}),
              file=sys.stderr)
        return 1
    except OSError as err:  # the machine's: a full disk, a read-only volume
        print(os_error_line(err, out), file=sys.stderr)
        return 1
    t = report["timings"]
    for path in report["takes"]:
        print(f"take:    {path}")
    print(f"preview: {report['preview']}")
    s = report["settings"]
    print(f"one network step, {s['mode']} guidance w={s['guidance']:g}; timings: model load "
          f"(with torch) {t['load_s']:.2f} s, picture features "
          f"{t['features_s']:.2f} s, generation {t['generate_s']:.2f} s, writing {t['write_s']:.2f} s; "
          f"total {time.perf_counter() - began:.2f} s")
    return 0


def run_toy(steps: int | None = None, seed: int = 0) -> int:
    import torch
    from tqdm import tqdm

    from trainer.toy import (ToySettings, evaluate_samples, one_step_samples, ring_modes,
                             sample_target, train_toy)

    settings = ToySettings(seed=seed) if steps is None else ToySettings(steps=steps, seed=seed)
    print("MF-MJT toy demo: one-step generation on a 2-D toy target (8 Gaussians on a ring, radius "
          f"{ring_modes().norm(dim=1)[0].item():.0f}).")
    print(f"Training two identical MLPs for {settings.steps} steps each on the CPU: MeanFlow "
          "(average velocity) and flow matching (instantaneous velocity).\n")
    results = {}
    for objective in ("meanflow", "flow_matching"):
        start = time.perf_counter()
        with tqdm(total=settings.steps, desc=f"{objective:>13}", unit="step", leave=True) as bar:
            def progress(step, total, loss):
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{loss:.3f}")
            model = train_toy(objective, settings, progress=progress)
        samples = one_step_samples(model, objective, n=4000, seed=seed + 1000)
        results[objective] = (evaluate_samples(samples, seed + 1000), time.perf_counter() - start)

    baseline = evaluate_samples(sample_target(4000, torch.Generator().manual_seed(seed + 7)), seed)
    print("\nOne network evaluation from noise to data (lower is closer to the target):")
    print(f"{'model':<24}{'mean dist. to nearest mode':>28}{'sliced W2 to target':>22}{'train s':>10}")
    for objective, label in (("meanflow", "MeanFlow, 1 step"),
                             ("flow_matching", "flow matching, 1 Euler")):
        m, seconds = results[objective]
        print(f"{label:<24}{m.mode_distance:>28.3f}{m.sliced_wasserstein:>22.3f}{seconds:>10.1f}")
    print(f"{'target samples (floor)':<24}{baseline.mode_distance:>28.3f}"
          f"{baseline.sliced_wasserstein:>22.3f}{'':>10}")
    ratio = results["flow_matching"][0].mode_distance / results["meanflow"][0].mode_distance
    print(f"\nOne-step MeanFlow lands {ratio:.1f}x closer to the modes than one-step flow matching.")
    return 0
