"""The seam: one use case every front end calls (issue 15; ARCHITECTURE.md).

`generate_takes(request, progress=, cancel=)` generates the takes of one media range, writes them
as Broadcast WAVs (and a preview movie) under new versioned names, and returns a `TakesReport`
whose `to_json()` is what `mfmjt generate --json`, the service and the panel show. The CLI's
`generate` and `demo`, `timeline foley` (one request per segment), the service's worker and the
in-process engine client are thin callers of it, so settings, names and provenance cannot drift
apart between them.

Pipelines are kept loaded per (bundle, device) by `load_pipeline`, so a second request to the
same bundle skips loading it (the service's warm worker, the panel's regenerate).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

from engine.cancel import CancelCheck, Progress, ProgressCallback, raise_if_cancelled
from engine.devices import is_out_of_memory, out_of_memory_error, resolve_device
from engine.errors import RequestError, UserError
from engine.naming import clashing_provenance_keys, provenance as make_provenance
from engine.pipeline import GenerateRequest


@dataclass(frozen=True)
class TakeRequest(GenerateRequest):
    """What to generate (the pipeline's request: media, range in seconds from the media's first
    frame, prompt, guidance, steps, seed, takes, best-of) and where to deliver it."""
    out: Optional[Path] = None  # the takes folder (required)
    bundle: str = "starter"
    device: str = "auto"  # engine/devices.py: auto, cpu, cuda, cuda:N, mps
    preview: bool = True
    # delivery details a timeline's segment sets (defaults: a plain generation)
    stem: Optional[str] = None             # file name stem (default `<movie>_foley`)
    paths: Optional[tuple[Path, ...]] = None  # exact take paths (a timeline's naming)
    record_start: Optional[Fraction] = None  # seconds since midnight of the range's start
    frame_rate: Optional[Fraction] = None  # the rate the takes are padded to
    head_handle: Fraction = Fraction(0)    # seconds of the range before the body
    extra_provenance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveredTake:
    path: Path
    index: int
    seed: int
    sync_score: Optional[float]

    def to_json(self) -> dict:
        return {"path": str(self.path), "take": self.index, "seed": self.seed,
                "sync_score": self.sync_score}


@dataclass
class TakesReport:
    takes: list[DeliveredTake]
    preview: Optional[Path]
    start: Fraction
    duration: Fraction
    settings: dict
    timings: dict
    provenance: dict

    @classmethod
    def from_json(cls, data: dict) -> "TakesReport":
        """A report as `to_json` wrote it (a service's job result)."""
        start, end = (Fraction(t).limit_denominator(100000) for t in data["range"])
        return cls(takes=[DeliveredTake(path=Path(t["path"]), index=t["take"], seed=t["seed"],
                                        sync_score=t["sync_score"]) for t in data["take_details"]],
                   preview=Path(data["preview"]) if data.get("preview") else None, start=start,
                   duration=end - start, settings=data["settings"], timings=data["timings"],
                   provenance=data["provenance"])

    def to_json(self) -> dict:
        return {"takes": [str(t.path) for t in self.takes],
                "take_details": [t.to_json() for t in self.takes],
                "preview": str(self.preview) if self.preview else None,
                "range": [float(self.start), float(self.start + self.duration)],
                "settings": self.settings,
                "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "provenance": self.provenance}


_PIPELINES: dict[tuple[str, str, str], object] = {}
_PIPELINES_LOCK = threading.Lock()


def load_pipeline(bundle: str | Path = "starter", *, device: str = "auto"):
    """The bundle's `FoleyPipeline` with the on-disk feature cache, loaded once per process and
    kept (the most recent one only: a bundle's network can be large)."""
    from engine.bundles.resolve import resolve_bundle
    from engine.features.cache import FeatureCache
    from engine.pipeline import FoleyPipeline
    # the picture's features are cached on disk: regenerating a range with another seed, prompt
    # or guidance skips decoding and encoding it again (the cache folder is part of the key: it
    # follows MFMJT_CACHE_DIR)
    cache = FeatureCache()
    key = (str(resolve_bundle(bundle).resolve()), str(resolve_device(device)), str(cache.root))
    with _PIPELINES_LOCK:
        if key not in _PIPELINES:
            _PIPELINES.clear()
            _PIPELINES[key] = FoleyPipeline(Path(key[0]), device=device, feature_cache=cache)
        return _PIPELINES[key]


def check_takes_folder(folder: Path) -> None:
    """Fail before any work when the takes folder cannot take new files."""
    from engine.atomic import unwritable_reason
    reason = unwritable_reason(folder)
    if reason == "it is a file, not a folder":
        raise UserError(f"{folder} is a file, not a folder; choose a folder for the takes",
                        field="out")
    if reason is not None:
        raise UserError(f"{folder}: cannot write there ({reason}); choose another folder for "
                        f"the takes", field="out")


def media_record_start(media: Path) -> Fraction:
    """Seconds since midnight of the media's first frame: its timecode track, else 0."""
    from engine.media.decode import probe
    from engine.timecode import timecode_seconds
    info = probe(media)
    return timecode_seconds(info.timecode, info.frame_rate or Fraction(25)) \
        if info.timecode else Fraction(0)


def _partial_contrast(codec) -> Optional[float]:
    """The strength of the codec's vocoder postfilter, None where it has none."""
    contrast = getattr(getattr(codec, "vocoder", None), "partial_contrast", None)
    return None if contrast is None else contrast.alpha


def generate_takes(request: TakeRequest, *, progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelCheck] = None, pipeline=None) -> TakesReport:
    """Generate, write and describe the takes of one request. Every setting is checked before
    the picture is decoded; a cancel (or any failure) leaves no file of this delivery behind."""
    from engine.deliver import write_takes

    began = time.perf_counter()
    if request.out is None:
        raise UserError("no folder for the takes; choose one", field="out")
    media = None if request.media is None else Path(request.media)
    out = Path(request.out)
    if clashing := clashing_provenance_keys(request.extra_provenance):
        raise RequestError(f"extra provenance {', '.join(map(repr, clashing))}: the engine "
                           f"records that itself; give your own keys other names",
                           field="extra_provenance")
    if request.best_of is not None and request.best_of < request.takes:
        raise RequestError(f"best-of {request.best_of} is fewer than the {request.takes} takes "
                           f"asked for; generate at least as many candidates as takes",
                           field="best_of")
    if pipeline is None:
        resolve_device(request.device)  # a device that is not here: refused before any work
    created = not out.exists()
    check_takes_folder(out)  # before any work: a wrong folder must not cost a generation
    try:
        pipeline = pipeline or load_pipeline(request.bundle, device=request.device)
        load_s = time.perf_counter() - began
        pipeline.settings(request)  # every number checked before the picture is decoded
        result = pipeline.generate(request, progress=progress, cancel=cancel)
        raise_if_cancelled(cancel, "before writing the takes")
        began = time.perf_counter()
        provenance = make_provenance(
            bundle=str(pipeline.bundle.path), network_sha256=pipeline.bundle.network_sha256,
            codec_version=getattr(pipeline.codec, "version", None), settings=result.settings,
            codec_partial_contrast=_partial_contrast(pipeline.codec),
            seed=request.seed, prompt=request.prompt, negative_prompt=request.negative_prompt,
            **request.extra_provenance)
        # the takes carry the source's time of day: its timecode track plus the range start
        record_start = request.record_start if request.record_start is not None else \
            (media_record_start(media) if media is not None else Fraction(0)) + result.start
        if progress is not None:
            progress(Progress("writing", 0, len(result.takes)))
        delivered = write_takes(result, request, out, stem=request.stem, preview=request.preview,
                                provenance=provenance, record_start=record_start,
                                frame_rate=request.frame_rate,
                                paths=list(request.paths) if request.paths else None,
                                head_handle=request.head_handle, cancel=cancel)
        if progress is not None:
            progress(Progress("writing", len(result.takes), len(result.takes)))
    except BaseException as err:
        # a request that fails or is cancelled leaves nothing: its files went with it, and a
        # folder it created for them goes too while empty
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if is_out_of_memory(err):  # the user can act on it: one line, not a traceback
            import torch
            device = pipeline.device if pipeline is not None else resolve_device(request.device)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            raise out_of_memory_error(device) from None
        raise
    timings = {"load_s": load_s, **result.timings, "write_s": time.perf_counter() - began}
    return TakesReport(
        takes=[DeliveredTake(path=p, index=t.index, seed=t.seed, sync_score=t.sync_score)
               for p, t in zip(delivered.takes, result.takes)],
        preview=delivered.preview, start=result.start, duration=result.duration,
        settings=result.settings, timings=timings, provenance=provenance)


def service_body(request: TakeRequest) -> dict:
    """The request as a service job body (engine/service/schema.py): times as seconds, exact
    values of a timeline's delivery as "n/d" fractions."""
    if request.media is None:
        raise UserError("text-to-audio (no media) runs in this process only, not on an engine "
                        "service; generate without the service", field="engine")
    body = {"media": str(Path(request.media).resolve()), "out": str(Path(request.out).resolve()),
            "start": float(request.start),
            "end": None if request.end is None else float(request.end),
            "prompt": request.prompt, "negative_prompt": request.negative_prompt,
            "guidance": request.guidance, "mode": request.mode, "steps": request.steps,
            "seed": request.seed, "takes": request.takes, "best_of": request.best_of,
            "preview": request.preview}
    if request.paths:
        body["delivery"] = {"paths": [str(Path(p).resolve()) for p in request.paths],
                            "record_start": str(Fraction(request.record_start or 0)),
                            "frame_rate": str(Fraction(request.frame_rate or 25)),
                            "head_handle": str(Fraction(request.head_handle)),
                            "extra_provenance": dict(request.extra_provenance)}
    return {k: v for k, v in body.items() if v is not None}


__all__ = ["DeliveredTake", "TakeRequest", "TakesReport", "check_takes_folder",
           "generate_takes", "load_pipeline", "media_record_start", "service_body"]
