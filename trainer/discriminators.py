"""Discriminators for the light adversarial fine-tuning of the starter vocoder (issue 14).

The spectrogram (multi-resolution) discriminators are the `vocos` package's own DiscriminatorR at 16
channels. Its period discriminator has fixed widths up to 1024 channels, far too heavy for a
one-thread CPU run, so the period discriminators here are HiFi-GAN's layout (Kong et al. 2020,
periods 2, 3, 5, 7, 11) at 16-64 channels. Losses (hinge, feature matching) are vocos's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from vocos.discriminators import DiscriminatorR

PERIODS = (2, 3, 5, 7, 11)
FFT_SIZES = (2048, 1024, 512)


class LightPeriodDiscriminator(nn.Module):
    def __init__(self, period: int, widths=(16, 32, 64, 64)):
        super().__init__()
        self.period = period
        layers, last = [], 1
        for i, width in enumerate(widths):
            stride = 3 if i < len(widths) - 1 else 1
            layers.append(weight_norm(nn.Conv2d(last, width, (5, 1), (stride, 1), padding=(2, 0))))
            last = width
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(last, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        """(B, samples) -> (scores (B, n), feature maps)."""
        b, n = x.shape
        if n % self.period:
            x = F.pad(x, (0, self.period - n % self.period), mode="reflect")
        h = x.view(b, 1, -1, self.period)
        fmap = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            fmap.append(h)
        h = self.post(h)
        fmap.append(h)
        return h.flatten(1), fmap


class VocoderDiscriminators(nn.Module):
    def __init__(self):
        super().__init__()
        self.period = nn.ModuleList(LightPeriodDiscriminator(p) for p in PERIODS)
        self.resolution = nn.ModuleList(DiscriminatorR(window_length=w, channels=16)
                                        for w in FFT_SIZES)

    def forward(self, wave: torch.Tensor):
        """(B, samples) -> ([scores], [[feature maps]]) over every sub-discriminator."""
        scores, fmaps = [], []
        for d in self.period:
            s, f = d(wave)
            scores.append(s)
            fmaps.append(f)
        for d in self.resolution:
            s, f = d(wave)
            scores.append(s)
            fmaps.append(f)
        return scores, fmaps
