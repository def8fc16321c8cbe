"""The starter codec of the embedded model: small enough to train and run on a CPU.

Mel front end MEL_16K, a small configuration of the same magnitude-preserving VAE (80 mel -> 8
latent channels at 31.25 tokens/s), and a small BigVGAN generator (hop 256) as the vocoder.
`training_losses` is the entry point the trainer calls: mel L1 + KL for the VAE, and
multi-resolution STFT + mel L1 for the vocoder (trained on real mels, as BigVGAN is).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from engine.codec.bigvgan import BigVGANConfig, BigVGANGenerator
from engine.codec.losses import multi_resolution_stft_loss
from engine.codec.mel import MEL_16K, MelConverter
from engine.codec.vae import LatentPosterior, MelVAE, VAEConfig

STARTER_VAE = VAEConfig(data_dim=80, embed_dim=8, hidden_dim=64, ch_mult=(1, 2, 2),
                        num_res_blocks=1)
STARTER_VOCODER = BigVGANConfig(num_mels=80, upsample_rates=(4, 4, 4, 4),
                                upsample_kernel_sizes=(8, 8, 8, 8), upsample_initial_channel=128,
                                resblock_kernel_sizes=(3, 7), resblock_dilations=((1, 3), (1, 3)),
                                sampling_rate=16000)


@dataclass
class CodecLosses:
    total: torch.Tensor
    mel_l1: float
    kl: float
    stft: float


class StarterCodec(nn.Module):
    def __init__(self, vae: VAEConfig = STARTER_VAE, vocoder: BigVGANConfig = STARTER_VOCODER):
        super().__init__()
        if vocoder.hop != MEL_16K.hop or vae.data_dim != MEL_16K.n_mels:
            raise ValueError("the starter vocoder hop and VAE mel bins must match MEL_16K")
        self.mel = MelConverter(MEL_16K)
        self.vae = MelVAE(vae)
        self.vocoder = BigVGANGenerator(vocoder)

    @property
    def sampling_rate(self) -> int:
        return MEL_16K.sampling_rate

    def encode(self, wave: torch.Tensor) -> LatentPosterior:
        """(B, samples) -> posterior over (B, 8, samples / 512)."""
        return self.vae.encode(self.mel(wave))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, 8, T) -> (B, T * 512) waveform."""
        return self.vocoder(self.vae.decode(latent)).squeeze(1)

    def training_losses(self, wave: torch.Tensor, *, kl_weight: float = 1e-4,
                        generator: Optional[torch.Generator] = None) -> CodecLosses:
        """wave (B, samples) with samples a multiple of 512."""
        if wave.shape[-1] % (2 * MEL_16K.hop):
            raise ValueError(f"training audio length must be a multiple of {2 * MEL_16K.hop} "
                             f"samples, got {wave.shape[-1]}")
        mel = self.mel(wave)
        posterior = self.vae.encode(mel)
        recon = self.vae.decode(posterior.sample(generator))
        mel_l1 = (recon - mel).abs().mean()
        kl = posterior.kl().mean()
        vocoded = self.vocoder(mel).squeeze(1)
        stft = multi_resolution_stft_loss(vocoded, wave)
        voc_mel = (self.mel(vocoded) - mel).abs().mean()
        total = mel_l1 + kl_weight * kl + stft + voc_mel
        return CodecLosses(total=total, mel_l1=mel_l1.item(), kl=kl.item(), stft=stft.item())
