"""Validation audio during training: a fixed set of cached windows generated in one step by the
network being trained, decoded with the run's codec, for TensorBoard (audio + spectrograms)."""
from __future__ import annotations

from typing import Callable

import torch

from engine.sampling import draw_noise, meanflow_sample, guided_velocity


def make_validator(shards: list[dict], codec, *, count: int = 2, seed: int = 0
                   ) -> Callable[[int, torch.nn.Module], dict]:
    first = shards[0]
    picks = range(min(count, first["latent_mean"].shape[0]))
    captions = first["captions"]

    @torch.no_grad()
    def validate(step: int, network) -> dict:
        was_training = network.training
        network.eval()
        device = next(network.parameters()).device
        out = {}
        for i in picks:
            clip = first["clip"][i:i + 1].to(device)
            sync = first["sync"][i:i + 1].to(device)
            text = first["text"][i:i + 1].to(device)
            # the network's own length for the window (a codec may floor where it ceils)
            length = network.config.lengths(clip.shape[1] / network.config.clip_fps).latent
            noise = draw_noise((1, length, network.config.latent_dim),
                               torch.Generator().manual_seed(seed + i), device=device)
            cond = network.preprocess_conditions(clip, sync, text)
            velocity = guided_velocity(network, cond, None, omega=1.0, mode="none")
            latent = meanflow_sample(velocity, noise)
            wave = codec.decode(network.unnormalize(latent).transpose(1, 2).float().cpu())
            out[f"{i}_{captions[i][:40]}"] = (wave[0], codec.sampling_rate)
        network.train(was_training)
        return out

    return validate
