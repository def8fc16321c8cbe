"""FoleyPipeline: bundle -> request -> takes (ARCHITECTURE.md).

media range -> features (cached) -> network (MeanFlow, 1..N steps, CFG / CFG-scaled) -> codec ->
takes at the codec rate; `write_takes` turns them into 48 kHz Broadcast WAVs and a preview movie.
Ranges longer than the model's training length are generated in overlapping windows of that
length, crossfaded with equal-power ramps (NLE.md); every window of a take uses its own noise drawn
from the take's seed, so a take is the same whatever the device.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from engine.analysis.sync import motion_onsets, sync_score
from engine.bundles import Bundle, load_bundle
from engine.bundles.format import MODE_DEFAULTS
from engine.bundles.components import load_codec, load_encoder
from engine.cancel import CancelCheck, Progress, ProgressCallback, raise_if_cancelled
from engine.devices import network_autocast, resolve_device
from engine.errors import RequestError
from engine.features.base import VideoFeatures, encode_range
from engine.media.decode import decode_frames, probe
from engine.media.errors import MediaError
from engine.sampling import (GUIDANCE_MODES, draw_noise, euler_sample, guided_velocity,
                             meanflow_sample, time_grid)

CROSSFADE = 0.5  # seconds of overlap between windows of a long range
MAX_STEPS = 1000  # a flow-matching bundle samples in tens of steps; more is a typo
MAX_TAKES = 64


# image codecs FFmpeg reads stills with (a movie of one of them has a duration: Motion JPEG)
STILL_IMAGE_CODECS = frozenset({"png", "mjpeg", "jpeg2000", "bmp", "tiff", "webp", "gif", "dpx",
                                "exr", "targa", "qoi"})


def has_picture(media: Optional[Path | str]) -> bool:
    """A moving picture to condition on: no media, audio-only media and a still image (an image
    codec, no duration) have none, and their requests are text-to-audio, as in MMAudio. A video
    stream whose container gives no duration (a raw .h264) is still a movie."""
    if media is None:
        return False
    info = probe(Path(media))
    return info.has_video and (info.duration > 0 or info.codec not in STILL_IMAGE_CODECS)


@dataclass(frozen=True)
class GenerateRequest:
    media: Optional[Path]  # None: text-to-audio of `end - start` seconds
    start: Fraction = Fraction(0)
    end: Optional[Fraction] = None  # None: to the end of the media
    prompt: str = ""
    negative_prompt: str = ""
    guidance: Optional[float] = None  # None: the bundle's default
    mode: Optional[str] = None
    steps: Optional[int] = None
    seed: int = 0
    takes: int = 1
    best_of: Optional[int] = None  # generate this many candidates, keep the `takes` best in sync


@dataclass
class Take:
    index: int
    seed: int
    audio: np.ndarray  # (samples,) float32 mono at the codec rate
    sample_rate: int
    sync_score: Optional[float] = None  # 0..1, engine/analysis/sync.py; None: picture unseen


@dataclass
class GenerateResult:
    takes: list[Take]
    start: Fraction
    duration: Fraction
    settings: dict
    timings: dict = field(default_factory=dict)
    picture: bool = True  # False: text-to-audio (no media, audio-only media, a still image)


def window_starts(duration: float, window: float, overlap: float = CROSSFADE) -> list[float]:
    """Starts of overlapping windows covering [0, duration]; the last one ends at the end."""
    if duration <= window:
        return [0.0]
    hop = window - overlap
    count = int(np.ceil((duration - window) / hop)) + 1
    starts = [i * hop for i in range(count - 1)] + [duration - window]
    return starts


class FoleyPipeline:
    def __init__(self, bundle: Bundle | Path | str, *, device: str | torch.device = "cpu",
                 feature_cache=None, frame_decoder: Callable = decode_frames):
        self.device = resolve_device(device)
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, device=self.device)
        self.network = self.bundle.network.to(self.device).eval()
        self.codec = load_codec(self.bundle).to(self.device)
        self.encoder = load_encoder(self.bundle, device=str(self.device))
        self.feature_cache = feature_cache
        self.frame_decoder = frame_decoder  # PyAV; tests give a slow one to check cancelling
        self.defaults = {**MODE_DEFAULTS[self.bundle.mode], **self.bundle.defaults}
        self.autocast = network_autocast(self.device)  # None: fp32 (benchmarks compare the two)

    @property
    def sample_rate(self) -> int:
        return self.codec.sampling_rate

    # ------------------------------------------------------------------ pieces
    def video_features(self, media: Path, start: Fraction, duration: Fraction,
                       cancel: Optional[CancelCheck] = None) -> VideoFeatures:
        decoder = self.frame_decoder if cancel is None else \
            (lambda *args: self.frame_decoder(*args, cancel=cancel))
        if self.feature_cache is not None:
            return self.feature_cache.video_features(media, start, duration, self.encoder,
                                                     decoder=decoder)
        clip, sync = decoder(media, start, duration, (self.encoder.clip_spec, self.encoder.sync_spec))
        return encode_range(self.encoder, clip, sync)

    def settings(self, request: GenerateRequest) -> dict:
        """The request's sampling settings with the bundle's defaults filled in; every number is
        checked here, before any work (a NaN guidance would otherwise surface after sampling)."""
        guidance = self.defaults["guidance"] if request.guidance is None else float(request.guidance)
        mode = request.mode or self.defaults["mode"]
        steps = int(self.defaults["steps"] if request.steps is None else request.steps)
        if mode not in GUIDANCE_MODES:
            raise RequestError(f"guidance mode {mode!r}: choose one of {GUIDANCE_MODES}",
                               field="mode")
        if not math.isfinite(guidance) or guidance < 0:
            raise RequestError(f"guidance must be a finite number >= 0, got {guidance}",
                               field="guidance")
        if not 1 <= steps <= MAX_STEPS:
            raise RequestError(f"steps must be from 1 to {MAX_STEPS}, got {steps}", field="steps")
        if not 1 <= request.takes <= MAX_TAKES:
            raise RequestError(f"takes must be from 1 to {MAX_TAKES}, got {request.takes}",
                               field="takes")
        if request.best_of is not None and not request.takes <= request.best_of <= MAX_TAKES:
            raise RequestError(f"best-of must be from the number of takes ({request.takes}) to "
                               f"{MAX_TAKES}, got {request.best_of}", field="best_of")
        if not 0 <= int(request.seed) < 2 ** 64:
            raise RequestError(f"seed must be a whole number from 0 to 2^64 - 1, got "
                               f"{request.seed}", field="seed")
        return {"guidance": guidance, "mode": mode, "steps": steps}

    @torch.no_grad()
    def sample_latents(self, features: list[VideoFeatures], text: torch.Tensor,
                       negative: Optional[torch.Tensor], noise: torch.Tensor, settings: dict,
                       progress: Optional[Callable[[int, int], None]] = None,
                       cancel: Optional[Callable[[], bool]] = None) -> torch.Tensor:
        """One window for a batch: features[i] with noise[i] (B, N, C) -> latents (B, N, C).
        text: (1 or B, L, D) text features, one for all items or one per item."""
        net, dev = self.network, self.device
        if any(f is None for f in features):  # text-to-audio: the learned empty picture
            lengths = net.config.lengths(noise.shape[1] / net.config.latent_rate)
            empty = VideoFeatures(clip=net.empty_clip(1, lengths.clip)[0].detach().cpu(),
                                  sync=net.empty_sync(1, lengths.sync)[0].detach().cpu())
            features = [empty if f is None else f for f in features]
        clip = torch.stack([f.clip for f in features]).to(dev)
        sync = torch.stack([f.sync for f in features]).to(dev)
        text = text.to(dev).expand(len(features), -1, -1) if text.shape[0] == 1 else text.to(dev)
        cond = net.preprocess_conditions(clip, sync, text)
        empty = net.empty_conditions(len(features), clip_len=clip.shape[1], sync_len=sync.shape[1],
                                     negative_text_f=None if negative is None else negative.to(dev))
        velocity = guided_velocity(net, cond, empty, omega=settings["guidance"],
                                   mode=settings["mode"])
        grid = time_grid(settings["steps"])
        sampler = meanflow_sample if self.bundle.mode == "meanflow" else euler_sample
        autocast = self.autocast
        with torch.autocast(dev.type, dtype=autocast, enabled=autocast is not None):
            latents = sampler(velocity, noise.to(dev), grid, progress=progress, cancel=cancel)
        return latents.float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, cancel: Optional[CancelCheck] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """(B, N, C) normalised latents -> (B, samples) at the codec rate; a cancel is polled
        between the VAE and the vocoder (each a unit of well under 100 ms for one 8 s take of the
        starter codec on a CPU core)."""
        latent = self.network.unnormalize(latents).transpose(1, 2).float().to(self.device)
        if not (hasattr(self.codec, "vae") and hasattr(self.codec, "vocoder")):
            return self.codec.decode(latent).float().cpu()
        mel = self.codec.vae.decode(latent)
        raise_if_cancelled(cancel, "while decoding the latents")
        if hasattr(self.codec, "vocode"):  # the starter codec samples the mel's texture
            return self.codec.vocode(mel, generator).float().cpu()
        return self.codec.vocoder(mel).squeeze(1).float().cpu()

    @staticmethod
    def texture_generator(seed: int, window_index: int) -> torch.Generator:
        """The take's own stream for the codec's mel texture (apart from its latent noise)."""
        return torch.Generator().manual_seed((int(seed) * 1000003 + window_index + 7919) % 2 ** 64)

    def noise(self, seed: int, window_index: int, length: int) -> torch.Tensor:
        # any 64-bit seed: the mix wraps modulo 2^64 (identical to before for small seeds)
        gen = torch.Generator().manual_seed((int(seed) * 1000003 + window_index) % 2 ** 64)
        return draw_noise((1, length, self.network.config.latent_dim), gen)

    # ------------------------------------------------------------------ whole requests
    def check_range(self, request: GenerateRequest) -> tuple[Fraction, Fraction]:
        """(start, duration) of the request's range, checked whole against the media (a window's
        end inside it would name another time) before any work. Without a picture the range is
        the media's sound (audio-only media) or `start` to `end` (no media, a still image; the
        network's window when `end` is not given)."""
        media = None if request.media is None else Path(request.media)
        if media is None and not request.prompt.strip():
            raise RequestError("nothing to generate from: no media and no prompt; describe the "
                               "sound in a prompt", field="prompt")
        info = probe(media) if media is not None else None
        start = Fraction(request.start)
        timed = info is not None and info.duration > 0  # a movie, or audio-only media

        def refuse(text: str) -> Exception:
            return MediaError(media, text) if media is not None else \
                RequestError(f"text-to-audio {text}", field="range")
        if timed:
            end = info.duration if request.end is None else Fraction(request.end)
        else:
            end = start + Fraction(self.network.config.training_duration).limit_denominator(1000) \
                if request.end is None else Fraction(request.end)
        if start < 0:
            raise refuse(f"range starts at {float(start):.3f} s, before the media; start at 0 "
                         f"or later")
        if end <= start:
            raise refuse(f"range ends at {float(end):.3f} s, not after its start "
                         f"({float(start):.3f} s); give an end after the start")
        if timed and end > info.duration + Fraction(1, 1000):
            raise refuse(f"range ends at {float(end):.3f} s, past the end of the media "
                         f"({float(info.duration):.3f} s); shorten the range")
        duration = end - start
        minimum = self.network.config.min_duration
        if duration < Fraction(minimum).limit_denominator(1000):
            raise refuse(f"range {float(duration):.3f} s is shorter than the model's minimum "
                         f"{minimum:.2f} s; select a longer range")
        return start, duration

    def generate(self, request: GenerateRequest, *,
                 progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelCheck] = None) -> GenerateResult:
        """The takes of one request, in memory. `progress` gets `Progress` events (features per
        window, sampling per step, decoding per window); `cancel` is polled between decoded
        frames, sampler steps and windows, so a cancel lands within one of those units."""
        settings = self.settings(request)
        media = None if request.media is None else Path(request.media)
        start, duration = self.check_range(request)
        moving = has_picture(media)
        if request.best_of is not None and not moving:
            raise RequestError("best-of ranks candidates by their sync with the picture, and "
                               "this request has none; ask for takes instead", field="best_of")
        cfg = self.network.config
        timings = {}
        began = time.perf_counter()
        window = min(float(duration), cfg.training_duration)
        starts = window_starts(float(duration), cfg.training_duration)
        length = Fraction(window).limit_denominator(100000)
        windows = [(index, start + Fraction(offset).limit_denominator(100000), length)
                   for index, offset in enumerate(starts)]
        report = progress or (lambda event: None)
        features: list[Optional[VideoFeatures]] = []
        for done, (_, s, d) in enumerate(windows):
            report(Progress("features", done, len(windows)))
            features.append(self.video_features(media, s, d, cancel=cancel) if moving else None)
        report(Progress("features", len(windows), len(windows)))
        timings["features_s"] = time.perf_counter() - began
        began = time.perf_counter()
        text = self.encoder.encode_text([request.prompt])
        negative = self.encoder.encode_text([request.negative_prompt]) \
            if request.negative_prompt else None
        latent_len = cfg.lengths(window).latent
        total = len(windows) * settings["steps"]
        candidates = request.best_of or request.takes
        pieces: list[list[np.ndarray]] = [[] for _ in range(candidates)]
        decode_s = 0.0
        for w, (index, _, _) in enumerate(windows):
            raise_if_cancelled(cancel, f"before window {w + 1} of {len(windows)}")
            noise = torch.cat([self.noise(request.seed + k, index, latent_len)
                               for k in range(candidates)])
            report(Progress("sampling", w * settings["steps"], total))
            latents = self.sample_latents(
                [features[w]] * candidates, text, negative, noise, settings, cancel=cancel,
                progress=lambda done, _n, w=w: report(Progress("sampling", w * settings["steps"]
                                                               + done, total)))
            # one take at a time, so that a cancel during decoding (the slow part of a one-step
            # request) lands within one take's decode, not the whole batch's
            for k in range(candidates):
                raise_if_cancelled(cancel, f"while decoding window {w + 1} of {len(windows)}")
                report(Progress("decoding", w * candidates + k, len(windows) * candidates))
                decoding = time.perf_counter()
                audio = self.decode(latents[k:k + 1], cancel,
                                    self.texture_generator(request.seed + k, index)).numpy()[0]
                decode_s += time.perf_counter() - decoding
                pieces[k].append(audio[: round(window * self.sample_rate)])
        report(Progress("decoding", len(windows) * candidates, len(windows) * candidates))
        timings["generate_s"] = time.perf_counter() - began
        timings["decode_s"] = decode_s
        n = round(float(duration) * self.sample_rate)
        picture = picture_onsets(features, starts, float(self.encoder.sync_spec.fps))
        takes = []
        for k in range(candidates):
            wave = crossfade(pieces[k], [round(s * self.sample_rate) for s in starts], n)
            score = None if picture is None else sync_score(wave, self.sample_rate, picture)
            takes.append(Take(index=k + 1, seed=request.seed + k, sample_rate=self.sample_rate,
                              audio=wave, sync_score=score))
        if request.best_of is not None:  # the best-synchronised, best first; ties keep seed order
            takes = sorted(takes, key=lambda t: -(t.sync_score or 0.0))[: request.takes]
            for index, take in enumerate(takes, start=1):
                take.index = index
        settings = {**settings, "best_of": request.best_of} if request.best_of else settings
        return GenerateResult(takes=takes, start=start, duration=duration, settings=settings,
                              timings=timings, picture=moving)


def picture_onsets(features: list[VideoFeatures], starts: list[float],
                   fps: float) -> Optional[np.ndarray]:
    """Motion onsets of the whole range (seconds from its start) from each window's envelope;
    each window gives the onsets before the next one starts. None without envelopes."""
    if any(f is None or f.motion is None for f in features):
        return None
    found: list[float] = []
    for w, (feats, offset) in enumerate(zip(features, starts)):
        until = starts[w + 1] if w + 1 < len(starts) else float("inf")
        found += [offset + t for t in motion_onsets(feats.motion.numpy(), fps) if offset + t < until]
    return np.array(sorted(found))


def crossfade(pieces: list[np.ndarray], offsets: list[int], total: int) -> np.ndarray:
    """Overlap-add windows at sample offsets with equal-power (sine / cosine) ramps over each
    overlap: windows generated from different noise are uncorrelated, so equal power keeps the
    level steady through the overlap where a linear (equal-gain) fade would dip by 3 dB."""
    out = np.zeros(total, np.float32)
    for i, (piece, offset) in enumerate(zip(pieces, offsets)):
        ramp = np.ones(len(piece), np.float32)
        if i > 0:  # fade in over the overlap with the previous window
            overlap = offsets[i - 1] + len(pieces[i - 1]) - offset
            if overlap > 0:
                ramp[:overlap] = np.sin(0.5 * np.pi * _fade_positions(overlap))
        if i + 1 < len(pieces):
            overlap = offset + len(piece) - offsets[i + 1]
            if overlap > 0:
                ramp[len(piece) - overlap:] *= np.cos(0.5 * np.pi * _fade_positions(overlap))
        end = min(total, offset + len(piece))
        out[offset:end] += (piece * ramp)[: end - offset]
    return out


def _fade_positions(n: int) -> np.ndarray:
    """n positions strictly inside (0, 1), symmetric, so fade-in and fade-out are mirror images."""
    return ((np.arange(n) + 0.5) / n).astype(np.float32)
