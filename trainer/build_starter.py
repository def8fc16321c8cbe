"""The one command that rebuilds the embedded starter model from nothing (issues 6 and 14):

    python -m trainer.build_starter all --out runs/starter

`all` keeps both cores busy for 2 h 40 min (model card, "How it was trained"). This core:
data (both cores), the VAE, its decoder's fine-tune, the cache's latents, the network (taking
the other core too once that is free); the other core meanwhile: the cache's picture and text
features (they need no codec), then the vocoder chain; then the codec file, export, defaults
and demo on both. The evaluator's classifier is not rebuilt by `all` (a fixed instrument: its
own stage). Stages (each resumable; `all` resumes where it stopped, and refuses to run twice
on one folder at once):
  data         synth scenes: 3000 train (namespace "train"), 64 validation ("validation"),
               kept once complete (synth/complete.json): the cache is keyed by their files
  codec        the starter codec version 2: `vae` and `vocoder` + `vocoder-timbre` +
               `vocoder-lines` side by side, then codec/codec.safetensors (float16)
  vae, vocoder, vocoder-timbre, vocoder-lines, vocoder-gan   one part of the codec on its own (1600 train
               clips, augmented)
  vae-decoder  the VAE's decoder alone, encoder frozen (the cached latents stay valid), with
               each crop's worst 0.5 % of bins weighed, then the codec file again
  combine      codec/codec.safetensors (float16) from the parts
  cache        latents (VAE posterior) and starter features of every train scene
  latents      the cache's latents again after the VAE trained further (features kept)
  fit          the `starter` network with the `starter` recipe on the cache (3500 steps, the
               caption dropped in 85 % of the samples): the shipped network since the ninth
               pass of issue 14
  picture      the fitted network (raw weights) fine-tuned with the `starter-picture` recipe:
               the shipped network of the sixth to eighth passes, no longer part of `all`
  classifier   the evaluator's classifier on 1500 train clips, real audio only (trainer/assets,
               or --classifier)
  export       the bundle: the fit run's network + codec + starter encoders + defaults
  defaults     the default guidance strength, chosen on held-out scenes that the gate never uses
  demo         the demo clip (engine/assets/demo)
  ablation     short runs for the r != t ratio experiment (model card, table c)
Every process uses one thread (two processes where it parallelises), as on the 2-core CPU the
model card reports, except the network once the other core is free and the closing stages.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing as mp
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from engine.errors import UserError
from trainer.classifier import CLASSIFIER_PATH

WORKERS = 2
TRAIN_SCENES, VALIDATION_SCENES = 3000, 64
# codec version 2 (issue 14): each part on 1600 varied scenes, one thread each, side by side
# the network's schedule: the `starter` recipe as it is (3500 steps, decay at 2800). The bundle
# shipped before the ninth pass of issue 14 had 2500 (decay at 2000) and a warm restart to 5000
# (decay at 4200): 35 minutes more of the critical path than the 3 h budget leaves (model card)
# the run a bundle ships: the fit (since the ninth pass of issue 14 the `starter` recipe drops
# the caption as often as the picture fine-tune did, so one run does both jobs)
SHIPPED_RUN = "run"
# the picture fine-tune from the fit's raw weights, a stage of its own (the shipped network of
# the sixth to eighth passes of issue 14; model card, "Choices")
PICTURE = dict(recipe="starter-picture", init_weights="model")
PICTURE_RUN = "picture"
# what the shipped bundle's picture run started from when no fit-bundle records it (that run was
# `mfmjt train fit --init` the previous shipped bundle: the fit run's raw weights at 5000 steps)
SHIPPED_INIT = "the fit run (recipe starter, 5000 steps), raw weights"
VAE = dict(steps=4000, files=1600, batch=16, segment=16384, lr=4e-3)
# then the decoder alone with each crop's worst bins weighed (the encoder, so the latents the
# network trains on, unchanged): in `all` right after the VAE, while the other core still
# computes the cache's features; since the seventh pass of issue 14 (model card, "The ball's tail")
VAE_DECODER = dict(steps=1500, files=1600, batch=16, segment=16384, lr=1e-3)
VOCODER = dict(steps=1500, files=1600, batch=16, segment=16384, lr=5e-4)
# then on with the mel L1 over the loud bins and the partials too (the shipped vocoder since the
# fourth starter: glass and metal rings 40 dB too quiet before it; model card)
VOCODER_TIMBRE = dict(steps=2000, files=1600, batch=16, segment=16384, lr=3e-4)
# then on with two long STFT windows: the frame-rate comb in silence gone (model card, "The
# vocoder's lines"); the shipped vocoder since the seventh pass of issue 14
VOCODER_LINES = dict(steps=700, files=1600, batch=16, segment=16384, lr=2e-4)
VOCODER_GAN = dict(steps=200, files=1600, batch=8, segment=8192, lr=2e-4)
# the codec parts a stage of the same name trains alone, on both cores
SINGLE_PARTS = {"vae": VAE, "vocoder": VOCODER, "vocoder-timbre": VOCODER_TIMBRE,
                "vocoder-lines": VOCODER_LINES, "vocoder-gan": VOCODER_GAN}
CLASSIFIER = dict(files=1500, steps=1200)
ABLATION = dict(ratios=(0.1, 0.3, 0.6), steps=800)  # paper Fig. 4 at our scale: short runs
ENCODER_SEED = 20251123
# the spread of the decoded mel's sampled texture (engine/codec/starter.py), chosen with the
# weights on held-out scenes (eval:1000) from 0, 0.1, 0.15, 0.2 (model card)
MEL_NOISE = 0.1
# the strength of the vocoder's partial-contrast postfilter (engine/codec/postfilter.py): of 1,
# 1.5, 2, 2.5, 3 the strongest that keeps every class and the onset F1 of the vocoder alone on
# held-out scenes (eval:1000; model card, "The vocoder's partials")
PARTIAL_CONTRAST = 2.0


def _log(stage: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stage}: {text}", flush=True)


def _write_range(args) -> None:
    torch.set_num_threads(1)
    from trainer.synth.writer import write_split
    out, namespace, first, count = args
    write_split(out, namespace, count, first=first)


DATA_DONE = "complete.json"  # in out/synth: every scene written (the cache keys hold their mtimes)


def stage_data(out: Path) -> None:
    marker = out / "synth" / DATA_DONE
    if marker.exists():  # written again, every file would be new to the cache: keep them
        _log("data", f"kept the scenes in {out / 'synth'} ({marker.name})")
        return
    jobs = []
    per = TRAIN_SCENES // WORKERS
    for w in range(WORKERS):
        jobs.append((out / "synth" / "train", "train", w * per, per))
    jobs.append((out / "synth" / "validation", "validation", 0, VALIDATION_SCENES))
    with mp.get_context("spawn").Pool(WORKERS) as pool:
        pool.map(_write_range, jobs)
    marker.write_text(json.dumps({"train": TRAIN_SCENES, "validation": VALIDATION_SCENES}) + "\n")
    _log("data", f"{TRAIN_SCENES} train + {VALIDATION_SCENES} validation scenes in {out / 'synth'}")


def _codec_part(out: Path, part: str, settings: dict, *, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    from trainer.codec_fit import fit_codec, load_waves
    paths = sorted((out / "synth" / "train" / "audio").glob("*.wav"))[:settings["files"]]
    waves = load_waves(paths, 16000, 4.0)
    start = time.time()

    def progress(step, total, logs):
        if step % 50 == 0 or step == total:
            _log(part, f"{step}/{total} {time.time() - start:.0f}s "
                       + " ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    fit_codec(waves, out / "codec", part=part, steps=settings["steps"],
              batch=settings["batch"], segment=settings["segment"], lr=settings["lr"],
              resume=True, progress=progress)


def _vocoder_chain(out: Path) -> None:
    """The shipped vocoder: plain losses, then the timbre terms, then the long STFT windows (the
    GAN fine-tune is a stage of its own: it rendered the VAE's mels worse, so it is not
    shipped)."""
    _codec_part(out, "vocoder", VOCODER)
    _codec_part(out, "vocoder-timbre", VOCODER_TIMBRE)
    _codec_part(out, "vocoder-lines", VOCODER_LINES)


def stage_codec(out: Path) -> None:
    """The VAE on this process's thread and the vocoder (then its timbre terms and long windows)
    on the other, then the codec file the bundle carries."""
    side = mp.get_context("spawn").Process(target=_vocoder_chain, args=(out,))
    side.start()
    _codec_part(out, "vae", VAE)
    side.join()
    if side.exitcode:
        raise SystemExit(f"the vocoder training failed ({side.exitcode})")
    _combine(out)
    _log("codec", f"wrote {out / 'codec' / 'codec.safetensors'}")


def _encoding_codec(out: Path):
    """The codec the cache encodes with: only the VAE matters, so the cache can start while the
    vocoder still trains; its weights rounded to float16 exactly as the bundle ships them
    (`combine_parts`), so the network trains on the latents the shipped encoder gives."""
    from safetensors.torch import load_file

    from engine.codec.starter import StarterCodec
    codec = StarterCodec()
    state = load_file(str(out / "codec" / "vae.safetensors"))
    codec.vae.load_state_dict({k[len("vae."):]: v.half().float() for k, v in state.items()})
    return codec.eval()


def _cache_part(args) -> None:
    """One worker's half of the training scenes: the whole cache, or (`refresh`) only its
    latents again after the VAE trained further. `features_first`: the cache before the VAE
    is trained (the picture and text features, the slow part, need no codec), its latents from
    an untrained VAE until `latents` refreshes them. One tuple argument: Pool.map's."""
    torch.set_num_threads(1)
    from engine.codec.starter import StarterCodec
    from engine.features.starter import StarterEncoder
    from trainer.cache import build_cache, refresh_latents
    from trainer.data import scan_library
    out, part, refresh, features_first = args
    report = scan_library(out / "synth" / "train" / "video", window_seconds=4.0)
    report.items = report.items[part::WORKERS]
    torch.manual_seed(0)
    codec = StarterCodec().eval() if features_first else _encoding_codec(out)
    summary = (refresh_latents if refresh else build_cache)(
        report, out / "cache" / f"part-{part}", codec=codec,
        encoder=StarterEncoder(seed=ENCODER_SEED), sample_rate=16000, files_per_shard=32)
    _log("latents" if refresh else "cache",
         f"part {part}: {summary.windows} windows, {len(summary.computed)} shards computed")


def stage_latents(out: Path) -> None:
    """Recompute the cache's latents after the VAE was trained further (features kept)."""
    with mp.get_context("spawn").Pool(WORKERS) as pool:
        pool.map(_cache_part, [(out, p, True, False) for p in range(WORKERS)])
    _write_latent_stats(out)
    (out / "cache" / LATENTS_PENDING).unlink(missing_ok=True)


def _write_latent_stats(out: Path) -> None:
    """The statistics over both workers' halves, where the network reads them."""
    from trainer.cache import write_latent_stats
    write_latent_stats(out / "cache", cached_shards(out))


LATENTS_PENDING = "latents.pending"  # in out/cache: latents from an untrained VAE


def stage_features(out: Path) -> None:
    """The cache's features on this process's one thread, before the VAE is trained (`all`:
    beside it); `stage_latents` then fills in the latents (until then `fit` refuses)."""
    (out / "cache").mkdir(parents=True, exist_ok=True)
    (out / "cache" / LATENTS_PENDING).write_text("run the `latents` stage\n")
    for part in range(WORKERS):
        _cache_part((out, part, False, True))


def stage_cache(out: Path) -> None:
    with mp.get_context("spawn").Pool(WORKERS) as pool:
        pool.map(_cache_part, [(out, p, False, False) for p in range(WORKERS)])
    _write_latent_stats(out)


def cached_shards(out: Path) -> list[dict]:
    from trainer.cache import load_shards
    return [s for p in range(WORKERS) for s in load_shards(out / "cache" / f"part-{p}")]


def _train_run(out: Path, run_name: str, network, recipe, *, label: str, max_steps: int | None,
               record: dict | None = None, widen: Optional[Callable[[], bool]] = None):
    """Train `network` with `recipe` on the cache into out/run_name (resumable), logging every
    50 steps as `label`, and write its run.json (`record` added to it). `widen`: asked every
    step while the run has one thread; once it says the other core is free, the run takes it."""
    import dataclasses

    from trainer.loop import train
    start = time.time()

    def progress(step, total, loss):
        if widen is not None and torch.get_num_threads() < WORKERS and widen():
            torch.set_num_threads(WORKERS)
            _log(label, f"the other core is free: {WORKERS} threads from step {step}")
        if step % 50 == 0 or step == total:
            _log(label, f"{step}/{total} {time.time() - start:.0f}s loss {loss:.4f}")
    result = train(network, cached_shards(out), recipe, out / run_name / "checkpoints",
                   resume=True, max_steps=max_steps, progress=progress,
                   log_dir=out / run_name / "tensorboard")
    elapsed = time.time() - start
    (out / run_name / "run.json").write_text(json.dumps(
        {**(record or {}), "recipe": dataclasses.asdict(recipe), "steps": result.step,
         "status": result.status}, indent=2, default=str))
    _log(label, f"{result.status} at step {result.step}, loss {result.last_loss:.4f}, "
                f"{elapsed / 60:.1f} min")
    return result


def stage_fit(out: Path, *, recipe_name: str = "starter", run_name: str = "run",
              max_steps: int | None = None, overrides: dict | None = None,
              threads: int = 1, widen: Optional[Callable[[], bool]] = None):
    import dataclasses

    from trainer.export import new_network
    from trainer.recipe import load_recipe
    torch.set_num_threads(threads)
    pending = out / "cache" / LATENTS_PENDING
    if pending.exists():
        raise UserError(f"{out / 'cache'}: its latents are placeholders from before the VAE was "
                        f"trained ({pending.name}); run the `latents` stage first")
    recipe = load_recipe(recipe_name)
    if overrides:
        recipe = dataclasses.replace(recipe, **overrides)
    torch.manual_seed(recipe.seed)
    return _train_run(out, run_name, new_network("starter", out / "cache"), recipe, label="fit",
                      max_steps=max_steps, widen=widen)


def stage_picture(out: Path, *, threads: int = 1, max_steps: int | None = None) -> None:
    """The fitted network fine-tuned so that the picture, not the caption, decides the
    material (recipes/starter-picture.toml; the shipped network of the sixth to eighth passes
    of issue 14, no longer part of `all`). It starts from the fit run's raw
    weights, exported as a bundle of its own (runs/starter/fit-bundle) as `mfmjt train fit
    --init` would start from it."""
    from engine.bundles import load_bundle
    from trainer.checkpoint import checkpoint_step, latest_checkpoint
    from trainer.recipe import load_recipe
    torch.set_num_threads(threads)
    base = out / "fit-bundle"
    fitted = latest_checkpoint(out / "run" / "checkpoints")
    if fitted is None:
        raise UserError(f"{out / 'run'}: no fitted network; run the `fit` stage first")
    fitted_steps = checkpoint_step(fitted)
    based_on = json.loads((base / "manifest.json").read_text())["provenance"]["steps"] \
        if (base / "manifest.json").exists() else None
    if based_on != fitted_steps:  # the fit run went on since: start from where it is now
        if latest_checkpoint(out / PICTURE_RUN / "checkpoints") is not None:
            raise UserError(f"{out / PICTURE_RUN}: that fine-tune started from the fit run at "
                            f"{based_on or 'unknown'} steps, which is now at {fitted_steps}; move "
                            f"{out / PICTURE_RUN} and {base} aside to fine-tune the new one")
        stage_export(out, base, run_name="run", weights=PICTURE["init_weights"])
    recipe = load_recipe(PICTURE["recipe"])
    torch.manual_seed(recipe.seed)
    _train_run(out, PICTURE_RUN, load_bundle(base).network, recipe, label="picture",
               max_steps=max_steps, record={"init": str(base)})


def stage_classifier(out: Path, target: Path) -> None:
    from trainer.classifier import save_classifier, train_classifier
    from trainer.codec_fit import load_waves
    from trainer.synth.scene import CLASS_NAMES
    from trainer.synth.writer import load_events
    torch.set_num_threads(1)
    events = sorted((out / "synth" / "train" / "events").glob("*.json"))[:CLASSIFIER["files"]]
    labels = torch.tensor([CLASS_NAMES.index(load_events(p)["sound_class"]) for p in events])
    waves = load_waves([out / "synth" / "train" / "audio" / f"{p.stem}.wav" for p in events],
                       16000, 4.0)
    model = train_classifier(waves, labels, CLASS_NAMES, steps=CLASSIFIER["steps"],
                             progress=lambda s, n, loss: s % 250 == 0 and _log(
                                 "classifier", f"{s}/{n} loss {loss:.4f}"))
    save_classifier(model, target, provenance={"data": f"{len(events)} synth train scenes, "
                                                       f"real audio only (no codec output)",
                                               "steps": CLASSIFIER["steps"]})
    _log("classifier", f"saved {target}")


KEPT_BESIDE_BUNDLE = ("MODEL_CARD.md", "demo_take_fingerprint.json")


def _picture_provenance(out: Path) -> dict:
    """The shipped run's recipe and what it started from (the fit-bundle's own provenance)."""
    manifest = out / "fit-bundle" / "manifest.json"
    if not manifest.exists():
        return {"recipe": PICTURE["recipe"], "init": SHIPPED_INIT}
    base = json.loads(manifest.read_text())["provenance"]
    kind = "raw" if base.get("weights") == "model" else "EMA"
    return {"recipe": PICTURE["recipe"],
            "init": f"the fit run (recipe {base.get('recipe')}, {base.get('steps')} steps), "
                    f"{kind} weights"}


def stage_export(out: Path, target: Path, *, run_name: str = SHIPPED_RUN, defaults: dict | None = None,
                 weights: str = "model", codec_file: Path | None = None,
                 mel_noise: float | None = None, provenance: dict | None = None) -> Path:
    from safetensors.torch import load_file

    from engine.bundles.components import STARTER_CODEC_FILE, starter_descriptors
    from trainer.checkpoint import latest_checkpoint
    from trainer.codec_fit import codec_steps
    from trainer.export import export_checkpoint
    checkpoint = latest_checkpoint(out / run_name / "checkpoints")
    if checkpoint is None:
        stage = "picture" if run_name == PICTURE_RUN else "fit"
        raise UserError(f"{out / run_name}: no checkpoint to export; run the `{stage}` stage "
                        f"first (python -m trainer.build_starter {stage} --out {out})")
    codec_desc, encoder_desc = starter_descriptors(
        ENCODER_SEED, mel_noise=MEL_NOISE if mel_noise is None else mel_noise,
        partial_contrast=PARTIAL_CONTRAST)
    codec_path = codec_file or out / "codec" / "codec.safetensors"
    # how far each part of the codec trained, as the codec file records it (`combine_parts`),
    # so the manifest tells a codec whose decoder was fine-tuned from one that was not
    part_steps = codec_steps(codec_path)
    # the card and the demo fingerprint live beside the bundle's files: keep them
    kept = {name: (target / name).read_bytes() for name in KEPT_BESIDE_BUNDLE
            if (target / name).is_file()}
    if target.exists():
        shutil.rmtree(target)
    path = export_checkpoint(
        checkpoint, target, preset="starter",
        data_summary={"scenes": TRAIN_SCENES, "namespace": "train", "seconds": 4.0},
        codec=codec_desc, encoders=encoder_desc, licence="MF-MJT starter model licence (ours)",
        extra_files={STARTER_CODEC_FILE: load_file(str(codec_path))},
        defaults=defaults or {"guidance": 2.5, "mode": "scaled", "steps": 1},
        provenance_extra={"command": "python -m trainer.build_starter all",
                          **(_picture_provenance(out) if run_name == PICTURE_RUN else {}),
                          **({"codec_steps": part_steps} if part_steps else {}), **(provenance or {})},
        weights=weights)
    for name, data in kept.items():
        (path / name).write_bytes(data)
    _log("export", f"bundle {path}")
    return path


DEMO_SCENE = dict(seed=19, namespace="demo", duration=6.0, sound_class="metal")


def stage_demo(target_dir: Path) -> None:
    """The demo clip shipped in engine/assets/demo: an unseen 6 s scene (longer than the 4 s
    training window, so the demo also exercises windowing), picture only, with its events and
    the synthesised reference sound beside it."""
    import json as _json

    from trainer.synth.audio import synthesize
    from trainer.synth.scene import sample_scene
    from trainer.synth.writer import write_mp4, write_wav
    scene = sample_scene(**DEMO_SCENE)
    target_dir.mkdir(parents=True, exist_ok=True)
    write_mp4(target_dir / "demo.mp4", scene, None)
    write_wav(target_dir / "demo_reference.wav", synthesize(scene))
    (target_dir / "demo.json").write_text(_json.dumps(scene.to_json(), indent=1) + "\n")
    _log("demo", f"{scene.sound_class} scene, events {scene.events} -> {target_dir}")


def stage_ablation(out: Path) -> None:
    """Short runs with r != t for 10 / 30 / 60 % of the pairs, otherwise the starter recipe,
    each exported as a bundle out/ablation-<percent> for trainer.experiments."""
    for ratio in ABLATION["ratios"]:
        name = f"ratio-{round(ratio * 100)}"
        stage_fit(out, run_name=name, max_steps=ABLATION["steps"],
                  overrides={"mean_ratio": ratio, "steps": ABLATION["steps"],
                             "decay_steps": (round(0.8 * ABLATION["steps"]),)})
        # the raw weights: an EMA with decay 0.999 is still ~45% initialisation after 800 steps
        stage_export(out, out / f"ablation-{round(ratio * 100)}", run_name=name, weights="model")


GUIDANCE_CHOICE = dict(scenes=40, seed=1000)  # choose w on these, report the gate on others


def stage_defaults(out: Path, target: Path, *, weights: str = "model",
                   classifier_path: Path | None = None, run_name: str = SHIPPED_RUN) -> dict:
    """Choose the default guidance strength (one step, CFG-scaled) on held-out scenes that are
    not the gate's (evaluation seed 1000), and export the bundle again with it recorded."""
    from engine.pipeline import FoleyPipeline
    from trainer.classifier import load_classifier
    from trainer.evaluate import evaluate, prepare_scenes
    from trainer.experiments import GUIDANCE
    pipeline = FoleyPipeline(target)
    classifier = load_classifier(classifier_path)
    scene_set = prepare_scenes(pipeline, count=GUIDANCE_CHOICE["scenes"],
                               seed=GUIDANCE_CHOICE["seed"])
    scores = {}
    for w in GUIDANCE:
        m = evaluate(pipeline, classifier, scenes=len(scene_set.scenes), seed=scene_set.seed,
                     settings={"guidance": w, "mode": "scaled", "steps": 1}, scene_set=scene_set)
        scores[w] = m["onset_f1"] + m["class_accuracy"]
        _log("defaults", f"w={w:g}: F1 {m['onset_f1']:.3f} acc {m['class_accuracy']:.3f}")
    best = max(GUIDANCE, key=lambda w: (scores[w], -w))  # a tie keeps the weaker guidance
    defaults = {"guidance": best, "mode": "scaled", "steps": 1}
    stage_export(out, target, run_name=run_name, defaults=defaults, weights=weights)
    (out / "defaults.json").write_text(json.dumps({"chosen": defaults, "scores": scores,
                                                   **GUIDANCE_CHOICE}, indent=2))
    return defaults


def _combine(out: Path) -> None:
    from trainer.codec_fit import combine_parts
    combine_parts(out / "codec", out / "codec" / "codec.safetensors")


def stage_vae_decoder(out: Path, *, threads: int = 1) -> None:
    """The VAE decoder's fine-tune (its encoder, so the cached latents, unchanged), then the
    codec file again."""
    _codec_part(out, "vae-decoder", VAE_DECODER, threads=threads)
    _combine(out)


FEATURES_DONE = "features.done"  # in out/cache: the features pass of `all` finished


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the one that started it dies (even by SIGKILL), so
    a killed `all` leaves no second writer behind to race the resumed one."""
    import ctypes
    import signal
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc Linux: the lock in `build_all` still refuses a second `all`
        pass


def _other_core(out: Path, features_done) -> None:
    """`all`'s second core, beside the VAE and then the network: the cache's features (they need
    no codec), then the vocoder chain."""
    _die_with_parent()
    torch.set_num_threads(1)
    marker = out / "cache" / FEATURES_DONE
    if not marker.exists():
        stage_features(out)
        marker.write_text("the features of every training window; latents refreshed after\n")
    features_done.set()
    _vocoder_chain(out)


def _waited(event, what: str, other) -> None:
    """Wait for `event`, set by the process `other`; stop in one line if that process ends
    without setting it."""
    if not event.is_set():
        _log("all", f"waiting for {what}")
    while not event.wait(timeout=5.0):
        if not other.is_alive():
            raise SystemExit(f"the other core's work ended ({other.exitcode}) before {what}; "
                             f"its log above says why; run `all` again to resume")


def build_all(out: Path, bundle: Path, classifier_path: Path = CLASSIFIER_PATH, *,
              weights: str = "model", max_steps: int | None = None) -> None:
    """The bundle from nothing on the 2-core CPU (model card, "How it was trained"): data ->
    VAE -> VAE decoder -> latents -> network on this core, the cache's features and the vocoder
    chain on the other (`_other_core`); the network takes both cores once that is done. The
    defaults are chosen with the evaluator's classifier at `classifier_path`: a fixed instrument
    (the `classifier` stage trains it, 12 min; not part of the bundle), so that every build is
    judged by the same one."""
    started = time.time()
    if not Path(classifier_path).is_file():
        raise UserError(f"{classifier_path}: the evaluator's classifier is missing (the defaults "
                        f"are chosen with it); train it first: python -m trainer.build_starter "
                        f"classifier --out {out}")
    lock = open(out / "build.lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError(f"{out}: another `all` is building there; wait for it or stop it "
                        f"first") from None
    stage_data(out)
    context = mp.get_context("spawn")
    features_done = context.Event()
    other = context.Process(target=_other_core, args=(out, features_done))
    other.start()
    try:
        torch.set_num_threads(1)
        _codec_part(out, "vae", VAE)
        # the decoder's fine-tune while the other core still computes the cache's features:
        # the encoder, so the latents cached next, stay as they are
        _codec_part(out, "vae-decoder", VAE_DECODER)
        _waited(features_done, "the cache's features on the other core", other)
        stage_latents(out)

        def other_core_free() -> bool:
            if other.exitcode:  # failed: stop now, not after the fit
                raise SystemExit(f"the vocoder chain on the other core failed ({other.exitcode});"
                                 f" its log above says why; run `all` again to resume")
            return other.exitcode == 0
        result = stage_fit(out, max_steps=max_steps, widen=other_core_free)
        if result.status != "finished":
            raise SystemExit(f"the network's fit was {result.status} at step {result.step}; run "
                             f"`all` again to resume")
        other.join()
        if other.exitcode:
            raise SystemExit(f"the work on the other core failed ({other.exitcode}); its log "
                             f"says which stage; run `all` again to resume")
    finally:
        if other.is_alive():
            other.terminate()
            other.join()
    torch.set_num_threads(WORKERS)
    _combine(out)
    stage_export(out, bundle, weights=weights)
    stage_defaults(out, bundle, weights=weights, classifier_path=classifier_path)
    stage_demo(bundle.parent / "demo")
    _log("all", f"done in {(time.time() - started) / 60:.0f} min")


def main(argv=None) -> int:
    from engine.paths import starter_bundle_dir
    parser = argparse.ArgumentParser(prog="python -m trainer.build_starter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["all", "data", "codec", "vae", "vae-decoder", "combine",
                                          "vocoder", "vocoder-timbre", "vocoder-lines",
                                          "vocoder-gan", "cache", "latents", "fit", "picture", "classifier", "export",
                                          "demo", "ablation", "defaults"])
    parser.add_argument("--out", type=Path, default=Path("runs/starter"))
    parser.add_argument("--bundle", type=Path, default=starter_bundle_dir(),
                        help="where `export` writes the bundle (default: the shipped one)")
    parser.add_argument("--classifier", type=Path, default=CLASSIFIER_PATH,
                        help="where `classifier` writes the evaluator's classifier and `all` "
                             "and `defaults` read it (default: the one the product ships)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--run", default=SHIPPED_RUN, choices=[SHIPPED_RUN, PICTURE_RUN],
                        help="which run `export` and `defaults` ship (default: the fit, "
                             f"{SHIPPED_RUN!r}; {PICTURE_RUN!r}: the picture fine-tune)")
    parser.add_argument("--weights", choices=["ema", "model"], default="model",
                        help="which weights `export` and `defaults` ship (default: the raw "
                             "weights, the model card's choice over the EMA)")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stage = args.stage
    if stage == "all":
        build_all(out, args.bundle, args.classifier, weights=args.weights,
                  max_steps=args.max_steps)
        return 0
    if stage == "data":
        stage_data(out)
    if stage == "codec":
        stage_codec(out)
    if stage in SINGLE_PARTS:  # alone: both cores
        _codec_part(out, stage, SINGLE_PARTS[stage], threads=WORKERS)
    if stage == "vae-decoder":  # alone: both cores
        stage_vae_decoder(out, threads=WORKERS)
    if stage == "combine":
        _combine(out)
    if stage == "cache":
        stage_cache(out)
    if stage == "latents":
        stage_latents(out)
    if stage == "fit":
        result = stage_fit(out, max_steps=args.max_steps, threads=WORKERS)
        if result.status != "finished":  # resumable: say so, and let a script see it (130:
            # interrupted, as `mfmjt train fit` and a shell's Ctrl-C say it)
            print(f"the network's fit was {result.status} at step {result.step}; run `fit` "
                  f"again to resume", file=sys.stderr)
            return 130
    if stage == "picture":
        stage_picture(out, threads=WORKERS, max_steps=args.max_steps)
    if stage == "classifier":
        stage_classifier(out, args.classifier)
    if stage == "ablation":
        stage_ablation(out)
    if stage == "export":
        stage_export(out, args.bundle, run_name=args.run, weights=args.weights)
    if stage == "defaults":
        stage_defaults(out, args.bundle, weights=args.weights, classifier_path=args.classifier,
                       run_name=args.run)
    if stage == "demo":
        stage_demo(args.bundle.parent / "demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
