"""One training loop for the MF-MJT network on a cached library (paper §2.2 objective).

One process, or several under `torchrun` (detected from the environment, nanoGPT-style): every
rank draws the same global batch and the same random numbers, trains on its slice, and gradients
are all-reduced by hand, because torch.func.jvp cannot go through a DDP wrapper (pytorch#102197);
gloo on CPU, NCCL on CUDA; rank 0 writes checkpoints. So N processes equal one process with the
same global batch. CPU fp32 or GPUs (bf16 autocast on the plain forward); AdamW with the recipe's schedule,
gradient clipping, EMA weights, atomic checkpoints every N steps holding optimizer, scheduler, EMA,
RNG states and the data position, so that resuming continues exactly (bit-identical on CPU).
SIGINT / SIGTERM finish the current step, write a checkpoint and return.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from engine.devices import network_autocast
from engine.errors import UserError
from trainer.checkpoint import (Position, latest_checkpoint, load_checkpoint,
                                remove_stale_temporaries, save_checkpoint)
from trainer.objectives import (AdaptiveWeighting, TimeSampler, drop_conditions, meanflow_loss,
                                network_velocity)
from trainer.recipe import Recipe


@dataclass
class TrainResult:
    step: int
    status: str  # "finished" or "interrupted"
    last_loss: float
    checkpoint: Optional[Path]


class CachedWindows:
    """Deterministic batches over cached windows: a fresh permutation per epoch, derived from the
    seed and the epoch, so a position (epoch, index) is all a checkpoint needs."""

    def __init__(self, shards: list[dict], batch_size: int, seed: int):
        keys = ("latent_mean", "latent_std", "clip", "sync", "text", "has_video")
        self.data = {k: torch.cat([s[k] for s in shards]) for k in keys}
        self.size = self.data["latent_mean"].shape[0]
        if self.size == 0:
            raise UserError("the cache holds no windows; run `mfmjt train scan` on its library to "
                            "see why", field="data")
        self.batch_size, self.seed = batch_size, seed

    def _order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))

    def next(self, position: Position) -> dict[str, torch.Tensor]:
        picks = []
        while len(picks) < self.batch_size:
            order = self._order(position.epoch)
            take = order[position.index:position.index + self.batch_size - len(picks)]
            picks.extend(take.tolist())
            position.index += len(take)
            if position.index >= self.size:
                position.epoch, position.index = position.epoch + 1, 0
        idx = torch.tensor(picks)
        return {k: v[idx] for k, v in self.data.items()}


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> World:
    """torchrun sets WORLD_SIZE / RANK; without them this is a single process."""
    import os
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    import torch.distributed as dist
    if not dist.is_initialized():
        if device.type == "cuda":  # NCCL's buffers live on the current device: this rank's GPU
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size())


def _all_reduce_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    import torch.distributed as dist
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world.size)


@contextmanager
def _stop_on_signals() -> Iterator[dict]:
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["stop"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _log_validation(writer, step: int, items: dict) -> None:
    """items: name -> (waveform (samples,), sample_rate); audio plus a log-spectrogram image."""
    for name, (wave, rate) in items.items():
        wave = wave.detach().float().cpu().flatten().clamp(-1, 1)
        writer.add_audio(f"validation/{name}", wave, step, sample_rate=rate)
        spec = torch.stft(wave, 512, 128, window=torch.hann_window(512), return_complex=True)
        image = (spec.abs() + 1e-5).log().flip(0)
        image = (image - image.min()) / (image.max() - image.min() + 1e-8)
        writer.add_image(f"spectrogram/{name}", image[None], step)


def train(network, shards: list[dict], recipe: Recipe, out_dir: Path | str, *,
          resume: bool = False, max_steps: Optional[int] = None,
          progress: Optional[Callable[[int, int, float], None]] = None,
          log_dir: Optional[Path | str] = None,
          validate: Optional[Callable[[int, torch.nn.Module], dict]] = None) -> TrainResult:
    """Train on cached windows. `log_dir`: TensorBoard scalars (loss, learning rate, JVP target
    size) and, at each checkpoint, `validate(step, network)`'s audio and spectrograms."""
    out_dir = Path(out_dir)
    remove_stale_temporaries(out_dir)
    device = next(network.parameters()).device
    world = init_distributed(device)
    if recipe.batch_size % world.size:
        raise UserError(f"the recipe's batch of {recipe.batch_size} does not split over "
                        f"{world.size} processes; start a number of processes that divides it",
                        field="recipe")
    local = slice(world.rank * recipe.batch_size // world.size,
                  (world.rank + 1) * recipe.batch_size // world.size)
    network.train()
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.lr, betas=recipe.betas,
                                  weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, recipe.lr_factor)
    ema = {k: v.detach().clone().float() for k, v in network.state_dict().items()
           if v.is_floating_point()}
    gen = torch.Generator().manual_seed(recipe.seed)
    data = CachedWindows(shards, recipe.batch_size, recipe.seed)
    position = Position(step=0, epoch=0, index=0)
    if resume and (ckpt := latest_checkpoint(out_dir)) is not None:
        position, _ = load_checkpoint(ckpt, network=network, ema=ema, optimizer=optimizer,
                                      scheduler=scheduler, generators={"train": gen})
    sampler = TimeSampler(mu=recipe.mu, sigma=recipe.sigma, mean_ratio=recipe.mean_ratio,
                          full_jump_ratio=recipe.full_jump_ratio)
    weighting = AdaptiveWeighting(recipe.adaptive_p, recipe.adaptive_c) \
        if recipe.adaptive_weighting else None
    autocast = network_autocast(device)  # the engine's rule: bf16 on a CUDA GPU that has it
    velocity = network_velocity(network)
    end = min(recipe.steps, max_steps) if max_steps is not None else recipe.steps
    last_loss, checkpoint, status = float("nan"), None, "finished"

    def write_checkpoint() -> Optional[Path]:
        if not world.is_main:
            return None
        return save_checkpoint(out_dir, network=network, ema=ema, optimizer=optimizer,
                               scheduler=scheduler, generators={"train": gen}, position=position,
                               extra={"recipe": recipe.name, "config": network.config.to_dict()})

    writer = None
    if log_dir is not None and world.is_main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(log_dir))

    with _stop_on_signals() as stop:
        while position.step < end:
            batch = data.next(position)
            mean = batch["latent_mean"].to(device).transpose(1, 2)  # (B, T, C)
            std = batch["latent_std"].to(device).transpose(1, 2)
            posterior = mean + std * torch.randn(mean.shape, generator=gen).to(device)
            latent = network.normalize(posterior)
            clip, sync, text = drop_conditions(
                network, batch["clip"].to(device), batch["sync"].to(device),
                batch["text"].to(device), gen, video_p=recipe.video_dropout,
                text_p=recipe.text_dropout, joint_p=recipe.joint_dropout,
                has_video=batch["has_video"].to(device).bool())
            noise = torch.randn(latent.shape, generator=gen).to(device)
            s, e = sampler.sample(latent.shape[0], gen, device=device)
            # every rank drew the global batch's randomness; each trains on its own slice
            cond = network.preprocess_conditions(clip[local], sync[local], text[local])
            out = meanflow_loss(velocity, latent[local], noise[local], s[local], e[local], cond,
                                weighting=weighting, autocast_dtype=autocast)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if world.size > 1:
                _all_reduce_gradients(trainable, world)
            torch.nn.utils.clip_grad_norm_(trainable, recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                for key, value in network.state_dict().items():
                    if key in ema:
                        ema[key].mul_(recipe.ema_decay).add_(value.float(), alpha=1 - recipe.ema_decay)
            position.step += 1
            last_loss = out.per_sample.mean().item()
            if progress is not None:
                progress(position.step, end, last_loss)
            if writer is not None:
                writer.add_scalar("loss/meanflow", last_loss, position.step)
                writer.add_scalar("loss/jvp_target_rms", out.target_norm, position.step)
                writer.add_scalar("lr", scheduler.get_last_lr()[0], position.step)
            if position.step % recipe.checkpoint_every == 0 or position.step == end:
                checkpoint = write_checkpoint()
                if writer is not None and validate is not None:
                    _log_validation(writer, position.step, validate(position.step, network))
            if stop["stop"]:
                checkpoint, status = write_checkpoint(), "interrupted"
                break
    if writer is not None:
        writer.close()
    return TrainResult(step=position.step, status=status, last_loss=last_loss,
                       checkpoint=checkpoint)
