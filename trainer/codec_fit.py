"""Training the starter codec on plain audio (issue 14). The two halves never need each other, so
each trains on its own, in its own file, and `combine_parts` writes the codec file a bundle carries:

- `vae`: the mel VAE. Mel L1 + KL, plus terms that keep what a plain L1 smooths away: L1 over
  the loud bins and over the partials alone (see `vae_loss`), L1 of the mel's differences along
  frequency (a partial is a narrow peak across bins; averaging it out is what made metal ring
  dull) and L1 of each frame's level (decoded silence came out too quiet and pulsing at the
  latent rate).
- `vae-decoder`: the VAE's decoder trained on with its encoder frozen (so the latents a network
  was trained on stay valid) and one more term, the mean over each crop's worst 0.5 % of bins
  (`hard_bins_l1`): the decoder let a bouncing ball's low tone ring on after each bounce, and
  the real-only classifier heard every ball as wood.
- `vocoder`: the Vocos vocoder on real mels: multi-resolution STFT (auraloss) + mel L1, as Vocos
  and BigVGAN are trained before their discriminators matter.
- `vocoder-timbre`: that vocoder trained on (a new learning-rate schedule) with its mel L1 also
  averaged over the loud bins and the partials, as the VAE's: the plain mean left glass and metal
  rings 40 dB too quiet (see `_VocoderLosses.reconstruction`).
- `vocoder-lines`: the timbre-trained vocoder on with two long windows (4096, 8192) added to its
  multi-resolution STFT loss: its partials were 5-18 dB under the real ones in a 2 Hz spectrum
  (spread around the line, not a raised floor) and it pulsed at its frame rate in silence, both
  finer than the 2048-sample window sees. 700 steps from the shipped vocoder took the comb from
  -4.2 to +0.1 dB (real -0.1) on 40 unseen scenes; the shipped vocoder since the seventh pass.
- `vocoder-codec`: that vocoder trained on with half of each batch's input mels replaced by the
  VAE's round trip of them (the decoded mean with the bundle's sampled texture, exactly what a
  take's latents reach the vocoder as) while its targets stay the real audio: the practice of
  fine-tuning a vocoder on its acoustic model's predicted mels (Tacotron 2 / WaveGlow, HiFi-GAN
  §4.4). A decoded mel differs from a real one mostly where the real one is quiet, and the
  vocoder trained on real mels alone turned those small differences into a sound the real-only
  classifier heard as another class (every bouncing ball as wood, issue 14). Needs `vae` too.
- `vocoder-gan`: a short adversarial fine-tune of that vocoder (hinge loss and feature matching
  over period and multi-resolution spectrogram discriminators, mel L1 x 45 as Vocos weighs it),
  which removes the frame-rate comb (16000 / 256 = 62.5 Hz) that losses on magnitudes leave in
  silence.

The VAE's input is standardised per mel bin (`data_mean`, `data_std`: MMAudio's VAE carries the
same buffers) with statistics of augmented training crops, measured once before its first step.
Without them the log-mel (about -3.4 on every bin, partials near 0) reached the bias-free
magnitude-preserving layers as a large common offset that each pixel norm divided out, and a
steady partial came back 25 dB too quiet after 3900 steps (issue 14); with them the same VAE
reaches that loss in under 300 steps.

Every batch is a random crop of the library with `trainer.augment.augment` (levels, noise floors,
rooms, silence). Weights are saved atomically every `save_every` steps; a run started again with
`resume` continues from them (optimizer moments restart: a short warm-up absorbs that).
"""
from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.atomic import atomic_target
from engine.codec.starter import CODEC_VERSION, StarterCodec
from engine.errors import UserError
from trainer.augment import augment
from trainer.data.windows import decode_audio
from trainer.stft_loss import multi_resolution_stft_loss

PARTS = ("vae", "vae-decoder", "vocoder", "vocoder-timbre", "vocoder-lines", "vocoder-codec",
         "vocoder-gan")
# the parts that train on from another part's weights (in that part's file), and that part
CONTINUES = {"vae-decoder": "vae", "vocoder-timbre": "vocoder", "vocoder-lines": "vocoder",
             "vocoder-codec": "vocoder", "vocoder-gan": "vocoder"}
# the decoded mel's sampled texture a bundle's codec applies (`codec.mel_noise` of the starter
# bundle, chosen on held-out scenes: trainer/build_starter.MEL_NOISE); `vocoder-codec` trains
# on the same observation
DECODED_TEXTURE = 0.1
DECODED_SHARE = 0.5
MEL_WEIGHT_GAN = 45.0  # Vocos's mel_loss_coeff
LOUD_RANGE = 2.0        # log10 units: bins within 40 dB of the crop's loudest
LOUD_WEIGHT = 2.0
PARTIAL_WIDTH = 9       # bins: the neighbourhood a partial stands above
PARTIAL_RISE = 0.5      # log10 units: 10 dB
PARTIAL_WEIGHT = 2.0
HARD_FRACTION = 0.005   # the decoder-only fine-tune: each crop's worst 0.5 % of bins ...
HARD_WEIGHT = 6.0       # ... weighed by their own mean (model card, "the ball's tail")
FREQ_DIFF_WEIGHT = 1.0
LEVEL_WEIGHT = 2.0
# BigVGAN's resolutions (n_fft, hop, window), as engine/codec/losses.py
_STFT = dict(fft_sizes=[1024, 2048, 512], hop_sizes=[120, 240, 50], win_lengths=[600, 1200, 240])
# `vocoder-lines`: two long windows more (4096 and 8192 samples: 4 and 2 Hz bins), where a
# partial spread by an unsteady frame-to-frame phase and a 62.5 Hz frame-rate comb show
_STFT_LINES = dict(fft_sizes=[1024, 2048, 512, 4096, 8192], hop_sizes=[120, 240, 50, 1024, 2048],
                   win_lengths=[600, 1200, 240, 4096, 8192])


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


STATISTICS_BATCHES = 16


@torch.no_grad()
def mel_statistics(codec: StarterCodec, waves: torch.Tensor, gen: torch.Generator, *,
                   batch: int, segment: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and standard deviation (1, bins, 1) of augmented training crops' log-mels."""
    mels = torch.cat([codec.mel(augment(_crops(waves, batch, segment, gen), gen))
                      for _ in range(STATISTICS_BATCHES)])
    return mels.mean(dim=(0, 2), keepdim=True), mels.std(dim=(0, 2), keepdim=True).clamp_min(1e-3)


def timbre_masks(mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loud, partial) masks of a (B, bins, frames) log-mel: the bins within 40 dB of the crop's
    loudest, and among them the partials (10 dB above the mean of their +-4 neighbours)."""
    loud = (mel > mel.amax(dim=(1, 2), keepdim=True) - LOUD_RANGE).float()
    neighbourhood = F.avg_pool1d(mel.transpose(1, 2), PARTIAL_WIDTH, 1, PARTIAL_WIDTH // 2,
                                 count_include_pad=False).transpose(1, 2)
    return loud, (mel - neighbourhood > PARTIAL_RISE).float() * loud


def timbre_l1(error: torch.Tensor, loud: torch.Tensor,
              partial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean error over the loud bins, and over each crop's partials (crops without partials
    left out), so that a weight on them does not shrink with how few they are."""
    loud_l1 = (error * loud).sum() / loud.sum().clamp_min(1.0)
    count = partial.sum(dim=(1, 2))
    per_crop = (error * partial).sum(dim=(1, 2)) / count.clamp_min(1.0)
    has_partials = (count > 0).float()
    return loud_l1, (per_crop * has_partials).sum() / has_partials.sum().clamp_min(1.0)


def hard_bins_l1(error: torch.Tensor, fraction: float = HARD_FRACTION) -> torch.Tensor:
    """The mean of each crop's largest `fraction` of (B, bins, frames) errors (at least one
    bin), averaged over the crops."""
    flat = error.flatten(1)
    count = max(1, int(fraction * flat.shape[1]))
    return flat.topk(count, dim=1).values.mean()


@torch.no_grad()
def decoded_mels(codec: StarterCodec, mel: torch.Tensor, gen: torch.Generator,
                 share: float = DECODED_SHARE) -> torch.Tensor:
    """The log-mels a vocoder hears for real ones (B, bins, frames): for a random `share` of the
    crops the VAE's round trip (decoded posterior mean + DECODED_TEXTURE x N(0, 1), as
    `StarterCodec.vocode` samples it), for the others the real mel itself."""
    decoded = codec.vae.decode(codec.vae.encode(mel).mean)
    frames = mel.shape[-1]
    decoded = F.pad(decoded, (0, max(0, frames - decoded.shape[-1])), mode="replicate")[..., :frames]
    decoded = decoded + DECODED_TEXTURE * torch.randn(decoded.shape, generator=gen)
    chosen = (torch.rand(mel.shape[0], generator=gen) < share)[:, None, None]
    return torch.where(chosen, decoded, mel)


def vae_loss(codec: StarterCodec, wave: torch.Tensor, gen: torch.Generator,
             kl_weight: float, *, hard_weight: float = 0.0,
             frozen_encoder: bool = False) -> tuple[torch.Tensor, dict]:
    """The VAE's loss; `frozen_encoder`: only the decoder learns (the latent space, and so a
    network trained on it, stays as it is); `hard_weight`: the weight of the mean error over each
    crop's worst HARD_FRACTION of bins."""
    mel = codec.mel(wave)
    with torch.set_grad_enabled(not frozen_encoder):
        posterior = codec.vae.encode(mel)
    recon = codec.vae.decode(posterior.sample(gen))
    error = (recon - mel).abs()
    # A plain L1 is spent on the noise floor: most bins of a Foley clip are floor, whose exact
    # per-bin values are random and irreducible, so the first VAE trained this way smoothed the
    # events' partials away. Two terms average over the bins that carry the timbre alone, so
    # their weight does not shrink with how few they are: the loud bins (within 40 dB of the
    # crop's loudest) and, per crop, the partials among them (bins 10 dB above the mean of their
    # +-4 neighbours). A glass partial is ~1 % of a crop's bins; without the partial term the VAE
    # left it 25 dB too quiet, with it the partial is back after 400 steps.
    loud, partial = timbre_masks(mel)
    mel_l1 = error.mean()
    loud_l1, partial_l1 = timbre_l1(error, loud, partial)
    # The worst bins of each crop, wherever they are: a bouncing ball's low tone that the decoder
    # let ring 15-19 dB too loud for 3-8 frames after each bounce (~1 % of the crop's bins, so
    # worth ~0.01 of the plain mean) was the whole difference between a ball and a wooden knock
    # to the real-only classifier (model card). Online hard-example mining over bins, as OHEM
    # (Shrivastava et al. 2016) does over regions: it needs no model of where such errors lie.
    hard_l1 = hard_bins_l1(error) if hard_weight else None
    freq_l1 = (recon.diff(dim=1) - mel.diff(dim=1)).abs().mean()
    # each frame's level (the mean over bins averages the floor's randomness away): decoded
    # silence must stay as loud and as flat as the real floor, not pulse at the latent rate
    level_l1 = (recon.mean(dim=1) - mel.mean(dim=1)).abs().mean()
    kl = posterior.kl().mean()
    total = (mel_l1 + LOUD_WEIGHT * loud_l1 + PARTIAL_WEIGHT * partial_l1
             + FREQ_DIFF_WEIGHT * freq_l1 + LEVEL_WEIGHT * level_l1 + kl_weight * kl)
    logs = {"mel_l1": mel_l1.item(), "loud_l1": loud_l1.item(), "partial_l1": partial_l1.item(),
            "freq_l1": freq_l1.item(), "level_l1": level_l1.item(), "kl": kl.item()}
    if hard_l1 is not None:
        total = total + hard_weight * hard_l1
        logs["hard_l1"] = hard_l1.item()
    return total, logs


class _VocoderLosses:
    def __init__(self, long_windows: bool = False):
        self.stft = multi_resolution_stft_loss(**(_STFT_LINES if long_windows else _STFT))

    def reconstruction(self, codec: StarterCodec, wave: torch.Tensor, *, timbre: bool = False,
                       hear: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        """(vocoded, multi-resolution STFT loss, mel L1). `timbre`: the mel L1 also averaged
        over the loud bins and the partials, as the VAE's (`timbre_l1`): with the plain mean,
        a glass or metal partial (~1 % of a crop's bins) is worth almost nothing, and the first
        trained vocoder rendered a glass ring 40 dB too quiet (its predicted magnitude at the
        partial 0.01 against 60); with these terms it rings again (issue 14, model card).
        `hear`: what the vocoder is given instead of the real mel, made from it (a decoded
        mel); the targets stay the real audio and its mel."""
        mel = codec.mel(wave)
        vocoded = codec.vocoder(mel if hear is None else hear(mel)).squeeze(1)
        stft = self.stft(vocoded[:, None], wave[:, None])
        error = (codec.mel(vocoded) - mel).abs()
        mel_l1 = error.mean()
        if timbre:
            loud_l1, partial_l1 = timbre_l1(error, *timbre_masks(mel))
            mel_l1 = mel_l1 + LOUD_WEIGHT * loud_l1 + PARTIAL_WEIGHT * partial_l1
        return vocoded, stft, mel_l1


def _part_file(out_dir: Path, part: str) -> Path:
    return out_dir / ("vae.safetensors" if part.startswith("vae") else "vocoder.safetensors")


def _load_part(codec: StarterCodec, path: Path, prefix: str) -> None:
    state = load_file(str(path))
    getattr(codec, prefix).load_state_dict({k[len(prefix) + 1:]: v for k, v in state.items()})


def _read_meta(out_dir: Path) -> dict:
    path = out_dir / "progress.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _record_progress(out_dir: Path, part: str, step: int) -> None:
    """`part` trained to `step`, merged into the folder's progress under a lock: parts train in
    parallel processes (`build_starter all`), and an unlocked read-merge-write could put back
    another part's older count (a finished VAE read as unfinished refuses to resume)."""
    with open(out_dir / "progress.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = _read_meta(out_dir)
            current[f"{part}_steps"] = step
            with atomic_target(out_dir / "progress.json", overwrite=True) as tmp:
                tmp.write_text(json.dumps(current))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fit_codec(waves: torch.Tensor, out_dir: Path | str, *, part: str, steps: int, batch: int = 16,
              segment: int = 16384, lr: float = 5e-4, kl_weight: float = 1e-4, seed: int = 0,
              save_every: int = 100, resume: bool = False,
              progress: Optional[Callable[[int, int, dict], None]] = None) -> StarterCodec:
    """Train one part of the starter codec into `out_dir` (vae.safetensors or
    vocoder.safetensors; `vocoder-gan` continues from the vocoder's weights, `vae-decoder` from
    the VAE's with its encoder frozen, so latents already cached stay valid)."""
    if part not in PARTS:
        raise ValueError(f"codec part {part!r}: choose one of {', '.join(PARTS)}")
    if segment % 512:
        raise ValueError(f"segment {segment} must be a multiple of 512 samples")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codec = StarterCodec(CODEC_VERSION)
    prefix = "vae" if part.startswith("vae") else "vocoder"
    target = _part_file(out_dir, part)
    meta = _read_meta(out_dir)
    start = meta.get(f"{part}_steps", 0) if resume else 0
    if part == "vocoder-lines" and segment < max(_STFT_LINES["win_lengths"]):
        raise ValueError(f"segment {segment} is shorter than vocoder-lines' longest STFT window "
                         f"({max(_STFT_LINES['win_lengths'])} samples)")
    base = CONTINUES.get(part)
    if base and meta.get(f"{base}_steps", 0) == 0:
        raise UserError(f"{out_dir}: train the {'VAE' if base == 'vae' else base} (part "
                        f"{base!r}) before {part!r}")
    if part == "vae" and start < steps and meta.get("vae-decoder_steps", 0):
        # the VAE's file holds the fine-tuned decoder now: training the whole VAE on would move
        # the encoder under latents already cached for the network
        raise UserError(f"{out_dir}: the VAE there had its decoder fine-tuned alone; train more "
                        f"VAE steps in a new --out folder")
    if part == "vocoder" and start < steps:
        for later, what in (("vocoder-gan", "adversarially"), ("vocoder-codec", "on decoded mels"),
                            ("vocoder-lines", "with long STFT windows")):
            if meta.get(f"{later}_steps", 0):
                raise UserError(f"{out_dir}: the vocoder there was already fine-tuned {what}; "
                                f"train more vocoder steps in a new --out folder")
    if part == "vocoder-codec" and meta.get("vae_steps", 0) == 0:
        raise UserError(f"{out_dir}: train the VAE (part 'vae') before 'vocoder-codec': the "
                        f"vocoder learns to render its decoded mels")
    if part == "vocoder-codec":
        _load_part(codec, _part_file(out_dir, "vae"), "vae")
    if target.exists() and (resume or part in CONTINUES):
        _load_part(codec, target, prefix)
    elif part == "vae":
        mean, std = mel_statistics(codec, waves, torch.Generator().manual_seed(seed + 1),
                                   batch=batch, segment=segment)
        codec.vae.data_mean.copy_(mean)
        codec.vae.data_std.copy_(std)
    module = getattr(codec, prefix)
    trained = codec.vae.decoder if part == "vae-decoder" else module
    optimizer = torch.optim.AdamW(trained.parameters(), lr=lr, betas=(0.8, 0.99))
    warmup = 50
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup)
        * 0.5 * (1 + np.cos(np.pi * min(1.0, (start + s) / steps))))
    gen = torch.Generator().manual_seed(seed + 7919 * start)
    losses = _VocoderLosses(long_windows=part == "vocoder-lines")
    disc = disc_opt = None
    if part == "vocoder-gan":
        from vocos.loss import DiscriminatorLoss, FeatureMatchingLoss, GeneratorLoss

        from trainer.discriminators import VocoderDiscriminators
        disc = VocoderDiscriminators()
        disc_file = out_dir / "discriminators.safetensors"
        if resume and disc_file.exists():
            disc.load_state_dict(load_file(str(disc_file)))
        disc_opt = torch.optim.AdamW(disc.parameters(), lr=lr, betas=(0.8, 0.99))
        hinge_d, hinge_g, matching = DiscriminatorLoss(), GeneratorLoss(), FeatureMatchingLoss()
    codec.train()
    if part == "vae-decoder":
        codec.vae.encoder.eval()
    if part == "vocoder-codec":
        codec.vae.eval()

    def save(step: int) -> None:
        state = {f"{prefix}.{k}": v.contiguous() for k, v in module.state_dict().items()}
        with atomic_target(target, overwrite=True) as tmp:
            save_file(state, str(tmp))
        if disc is not None:
            with atomic_target(out_dir / "discriminators.safetensors", overwrite=True) as tmp:
                save_file({k: v.contiguous() for k, v in disc.state_dict().items()}, str(tmp))
        _record_progress(out_dir, part, step)

    for step in range(start, steps):
        wave = augment(_crops(waves, batch, segment, gen), gen)
        if part == "vae":
            loss, logs = vae_loss(codec, wave, gen, kl_weight)
        elif part == "vae-decoder":
            loss, logs = vae_loss(codec, wave, gen, kl_weight, hard_weight=HARD_WEIGHT,
                                  frozen_encoder=True)
        elif part in ("vocoder", "vocoder-timbre", "vocoder-lines", "vocoder-codec"):
            hear = (lambda mel: decoded_mels(codec, mel, gen)) if part == "vocoder-codec" else None
            _, stft, mel_l1 = losses.reconstruction(codec, wave, timbre=part != "vocoder",
                                                    hear=hear)
            loss, logs = stft + mel_l1, {"stft": stft.item(), "mel_l1": mel_l1.item()}
        else:
            vocoded, stft, mel_l1 = losses.reconstruction(codec, wave)
            real_scores, _ = disc(wave)
            fake_scores, _ = disc(vocoded.detach())
            d_loss = hinge_d(real_scores, fake_scores)[0]
            disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            disc_opt.step()
            real_scores, real_maps = disc(wave)
            fake_scores, fake_maps = disc(vocoded)
            adv = hinge_g(fake_scores)[0]
            fm = matching([[m.detach() for m in maps] for maps in real_maps], fake_maps)
            loss = (adv + fm + MEL_WEIGHT_GAN * mel_l1 + stft).squeeze()
            logs = {"adv": adv.item(), "fm": fm.item(), "d": d_loss.item(),
                    "mel_l1": mel_l1.item(), "stft": stft.item()}
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


CODEC_STEPS_KEY = "codec_steps"


def combine_parts(out_dir: Path | str, target: Path | str, *, half: bool = True) -> Path:
    """The bundle's codec file from the trained parts, with how far each part trained (the
    folder's progress) in its metadata, so the file itself says what it holds. `half`: stored as
    float16 (loaded back to float32; the rounding is far below what the ear or the evaluator
    resolves) to keep the bundle within its size budget."""
    out_dir = Path(out_dir)
    state = {}
    for part in ("vae", "vocoder"):
        path = _part_file(out_dir, part)
        if not path.exists():
            raise FileNotFoundError(f"{path}: train the codec's {part} first")
        state.update(load_file(str(path)))
    codec = StarterCodec(CODEC_VERSION)
    codec.load_state_dict(state, strict=True)  # refuses parts of another codec version
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    with atomic_target(Path(target), overwrite=True) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp),
                  metadata={CODEC_STEPS_KEY: json.dumps(_read_meta(out_dir), sort_keys=True)})
    return Path(target)


def codec_steps(path: Path | str) -> dict:
    """The part steps `combine_parts` recorded in a codec file ({} for a file without them)."""
    with safe_open(str(path), "pt") as handle:
        recorded = (handle.metadata() or {}).get(CODEC_STEPS_KEY)
    return json.loads(recorded) if recorded else {}
