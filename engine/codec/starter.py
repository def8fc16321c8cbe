"""The starter codec of the embedded model: small enough to train and run on a CPU.

Two versions, recorded in a bundle's manifest (`codec.version`), so that a bundle made with the
first still loads and generates exactly as it did:
  1  MEL_16K, a magnitude-preserving VAE to 8 latent channels at 31.25 tokens/s (hidden 64) and a
     small BigVGAN vocoder (hop 256), trained without discriminators. Its round trip lost the
     timbre of ringing and tonal sounds (issue 14: a metal plate's partials became a buzzy comb).
  2  MEL_16K, the same VAE family with MMAudio's 16 kHz latent width, 20 channels at 31.25
     tokens/s (MODEL.md §5) and hidden 128, and a Vocos vocoder (ConvNeXt + iSTFT head) trained
     with mel / multi-resolution STFT losses, then lightly adversarially.
`training_losses` is the quick joint loss the tests and small trainer runs use; the starter's
own codec training (trainer/codec_fit.py) trains each part on its own.

`mel_noise` (a bundle's `codec.mel_noise`, default 0): the VAE decodes the *mean* log-mel of its
Gaussian observation model, but a real log-mel fluctuates around that mean wherever the sound is
noise-like (the floor's frame-to-frame spread is ~0.12 log10 units on our scenes). Fed the smooth
mean, the vocoder repeats its output every frame, a 62.5 Hz buzz in silence, and flat tones read as
thuds; sampling the observation (mean + mel_noise x N(0, 1), drawn from the take's own generator)
gives it the texture it was trained on (issue 14: the round trip's comb in silence from 22 dB to
about real audio's, and the ball scenes' class back).

`partial_contrast` (a bundle's `codec.partial_contrast`, default 0 = off): the strength `alpha` of
the postfilter that restores the contrast of the Vocos vocoder's smeared partials
(engine/codec/postfilter.py); inference only, the codec's weights are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from engine.codec.bigvgan import BigVGANConfig, BigVGANGenerator
from engine.codec.losses import multi_resolution_stft_loss
from engine.codec.mel import MEL_16K, MelConverter
from engine.codec.postfilter import PartialContrast
from engine.codec.vae import LatentPosterior, MelVAE, VAEConfig
from engine.codec.vocos_vocoder import VocosConfig, VocosVocoder

STARTER_VAE_V1 = VAEConfig(data_dim=80, embed_dim=8, hidden_dim=64, ch_mult=(1, 2, 2),
                           num_res_blocks=1)
STARTER_VOCODER_V1 = BigVGANConfig(num_mels=80, upsample_rates=(4, 4, 4, 4),
                                   upsample_kernel_sizes=(8, 8, 8, 8), upsample_initial_channel=128,
                                   resblock_kernel_sizes=(3, 7), resblock_dilations=((1, 3), (1, 3)),
                                   sampling_rate=16000)
STARTER_VAE = VAEConfig(data_dim=80, embed_dim=20, hidden_dim=128, ch_mult=(1, 2, 2),
                        num_res_blocks=1)
STARTER_VOCODER = VocosConfig(num_mels=80, dim=256, intermediate_dim=768, num_layers=8,
                              n_fft=1024, hop=256)
CODEC_VERSION = 2
CODEC_VERSIONS = {1: (STARTER_VAE_V1, STARTER_VOCODER_V1), 2: (STARTER_VAE, STARTER_VOCODER)}


@dataclass
class CodecLosses:
    total: torch.Tensor
    mel_l1: float
    kl: float
    stft: float


class StarterCodec(nn.Module):
    def __init__(self, version: int = CODEC_VERSION, *, mel_noise: float = 0.0,
                 partial_contrast: float = 0.0):
        super().__init__()
        if not 0.0 <= mel_noise <= 1.0:
            raise ValueError(f"mel_noise {mel_noise} is outside 0..1 (log10 units)")
        if partial_contrast and version == 1:
            raise ValueError("partial_contrast needs the Vocos vocoder of codec version 2")
        self.mel_noise = float(mel_noise)
        if version not in CODEC_VERSIONS:
            raise ValueError(f"starter codec version {version!r} is not one this engine knows "
                             f"({', '.join(map(str, CODEC_VERSIONS))}); update MF-MJT Foley")
        vae, vocoder = CODEC_VERSIONS[version]
        self.version = version
        self.mel = MelConverter(MEL_16K)
        self.vae = MelVAE(vae)
        self.vocoder = BigVGANGenerator(vocoder) if version == 1 else VocosVocoder(vocoder)
        if partial_contrast:
            self.vocoder.partial_contrast = PartialContrast(alpha=float(partial_contrast))
        if vocoder.hop != MEL_16K.hop or vae.data_dim != MEL_16K.n_mels:
            raise ValueError("the starter vocoder hop and VAE mel bins must match MEL_16K")

    @property
    def sampling_rate(self) -> int:
        return MEL_16K.sampling_rate

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_channels(self) -> int:
        return self.vae.cfg.embed_dim

    def encode(self, wave: torch.Tensor) -> LatentPosterior:
        """(B, samples) -> posterior over (B, channels, samples / 512)."""
        return self.vae.encode(self.mel(wave))

    def decode(self, latent: torch.Tensor,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """(B, channels, T) -> (B, T * 512) waveform."""
        return self.vocode(self.vae.decode(latent), generator)

    def vocode(self, mel: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A decoded (mean) log-mel -> waveform, the observation sampled with `mel_noise` from
        `generator` (a fixed one when None: the same latent always sounds the same)."""
        mean = mel
        if self.mel_noise:
            generator = generator or torch.Generator().manual_seed(0)
            noise = torch.randn(mel.shape, generator=generator, dtype=mel.dtype)
            mel = mel + self.mel_noise * noise.to(mel.device)
        if getattr(self.vocoder, "partial_contrast", None) is not None:
            # the postfilter finds partials in the mean: the sampled texture is noise, and read
            # as band prominence it would sharpen noise-like sounds too
            return self.vocoder(mel, gate_mel=mean).squeeze(1)
        return self.vocoder(mel).squeeze(1)

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
