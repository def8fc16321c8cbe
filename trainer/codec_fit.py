"""Training the starter codec on plain audio: the VAE (mel L1 + KL) and the vocoder (multi-resolution
STFT + mel L1 on real mels, as BigVGAN is trained, without its discriminators) separately, since
neither needs the other. Weights are saved atomically as safetensors every `save_every` steps and
a run started again with `resume` continues from them (optimizer moments restart: a short warm-up
absorbs that)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.atomic import atomic_target
from engine.codec.losses import multi_resolution_stft_loss
from engine.codec.starter import StarterCodec
from trainer.data.windows import decode_audio

PARTS = ("vae", "vocoder")


def load_waves(paths: list[Path], sample_rate: int, seconds: float) -> torch.Tensor:
    """(N, samples) mono clips, each padded or cut to `seconds`."""
    size = int(seconds * sample_rate)
    out = np.zeros((len(paths), size), np.float32)
    for i, path in enumerate(paths):
        audio = decode_audio(Path(path), sample_rate)[:size]
        out[i, :len(audio)] = audio
    return torch.from_numpy(out)


def _crops(waves: torch.Tensor, batch: int, segment: int, gen: torch.Generator) -> torch.Tensor:
    rows = torch.randint(0, waves.shape[0], (batch,), generator=gen)
    starts = torch.randint(0, waves.shape[1] - segment + 1, (batch,), generator=gen)
    return torch.stack([waves[r, s:s + segment] for r, s in zip(rows.tolist(), starts.tolist())])


def part_loss(codec: StarterCodec, part: str, wave: torch.Tensor, gen: torch.Generator,
              kl_weight: float) -> tuple[torch.Tensor, dict]:
    mel = codec.mel(wave)
    if part == "vae":
        posterior = codec.vae.encode(mel)
        recon = codec.vae.decode(posterior.sample(gen))
        mel_l1, kl = (recon - mel).abs().mean(), posterior.kl().mean()
        return mel_l1 + kl_weight * kl, {"mel_l1": mel_l1.item(), "kl": kl.item()}
    vocoded = codec.vocoder(mel).squeeze(1)
    stft = multi_resolution_stft_loss(vocoded, wave)
    mel_l1 = (codec.mel(vocoded) - mel).abs().mean()
    return stft + mel_l1, {"stft": stft.item(), "mel_l1": mel_l1.item()}


def fit_codec(waves: torch.Tensor, out: Path | str, *, part: str, steps: int, batch: int = 8,
              segment: int = 8192, lr: float = 2e-4, kl_weight: float = 1e-4, seed: int = 0,
              save_every: int = 200, resume: bool = False,
              progress: Optional[Callable[[int, int, dict], None]] = None) -> StarterCodec:
    """Train one part of the codec in `out` (codec.safetensors holds both parts)."""
    if part not in PARTS:
        raise ValueError(f"codec part {part!r}: choose one of {PARTS}")
    if segment % 512:
        raise ValueError(f"segment {segment} must be a multiple of 512 samples")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    codec = StarterCodec()
    start = 0
    if out.exists():
        state = load_file(str(out))
        codec.load_state_dict(state, strict=True)
        meta = json.loads((out.with_suffix(".json")).read_text()) if out.with_suffix(".json").exists() else {}
        start = meta.get(f"{part}_steps", 0) if resume else 0
    module = codec.vae if part == "vae" else codec.vocoder
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, betas=(0.8, 0.99))
    warmup = 50
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, (start + s) / steps))))
    gen = torch.Generator().manual_seed(seed + start)
    codec.train()

    def save(step: int) -> None:
        meta = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
        meta[f"{part}_steps"] = step
        with atomic_target(out, overwrite=True) as tmp:
            save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, str(tmp))
        with atomic_target(out.with_suffix(".json"), overwrite=True) as tmp:
            tmp.write_text(json.dumps(meta))

    for step in range(start, steps):
        wave = _crops(waves, batch, segment, gen)
        loss, logs = part_loss(codec, part, wave, gen, kl_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if progress is not None:
            progress(step + 1, steps, logs)
        if (step + 1) % save_every == 0 or step + 1 == steps:
            save(step + 1)
    return codec.eval()
