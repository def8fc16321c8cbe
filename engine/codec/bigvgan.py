"""BigVGAN vocoders (v1 16 kHz from Make-An-Audio 2; v2 44.1 kHz 128-band 512x), own implementation.

Generator: conv_pre -> [ConvTranspose upsampler -> mean of 3 AMP blocks] x 6 -> anti-aliased
SnakeBeta -> conv_post -> tanh (v1) or clamp (v2). AMP blocks apply each SnakeBeta at twice the rate
(Kaiser-windowed sinc up / down sampling, kernel 12). Official checkpoints store weight-normed
convolutions (`weight_g` / `weight_v`, or torch's parametrization names); `load_official` folds
them into plain weights, i.e. the weight norm is removed at load time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BigVGANConfig:
    num_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int = 1536
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    tanh_at_final: bool = True
    bias_at_final: bool = True
    sampling_rate: int = 16000

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)


BIGVGAN_V1_16K = BigVGANConfig(num_mels=80, upsample_rates=(4, 4, 2, 2, 2, 2),
                               upsample_kernel_sizes=(8, 8, 4, 4, 4, 4), sampling_rate=16000)
# NVIDIA's published config for bigvgan_v2_44khz_128band_512x
BIGVGAN_V2_44K = BigVGANConfig(num_mels=128, upsample_rates=(8, 4, 2, 2, 2, 2),
                               upsample_kernel_sizes=(16, 8, 4, 4, 4, 4), tanh_at_final=False,
                               bias_at_final=False, sampling_rate=44100)


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """(1, 1, kernel_size) low-pass: Kaiser-windowed sinc normalised to unit DC gain."""
    even = kernel_size % 2 == 0
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = (torch.arange(-half, half) + 0.5) if even else (torch.arange(kernel_size) - half)
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1),
                                            stride=self.ratio, groups=channels)
        return x[..., self.crop_left:-self.crop_right]


class LowPassFilter1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.stride = ratio
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(x.shape[1], -1, -1), stride=self.stride,
                        groups=x.shape[1])


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = LowPassFilter1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    """x + 1 / (exp(beta) + 1e-9) * sin^2(x * exp(alpha)), log-scale parameters per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha)[None, :, None]
        beta = torch.exp(self.beta)[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


class Activation1d(nn.Module):
    """Anti-aliased activation: upsample x2, SnakeBeta, low-pass and downsample x2."""

    def __init__(self, channels: int):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class AMPBlock1(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList([nn.Conv1d(channels, channels, kernel, dilation=d,
                                               padding=_padding(kernel, d)) for d in dilations])
        self.convs2 = nn.ModuleList([nn.Conv1d(channels, channels, kernel,
                                               padding=_padding(kernel)) for _ in dilations])
        self.activations = nn.ModuleList([Activation1d(channels) for _ in range(2 * len(dilations))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts = self.activations
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts[::2], acts[1::2]):
            x = x + c2(a2(c1(a1(x))))
        return x


class BigVGANGenerator(nn.Module):
    """mel (B, num_mels, T) -> waveform (B, 1, T * hop) in [-1, 1]."""

    def __init__(self, cfg: BigVGANConfig):
        super().__init__()
        self.cfg = cfg
        ch0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, ch0, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            ch_in, ch = ch0 // 2 ** i, ch0 // 2 ** (i + 1)
            self.ups.append(nn.ModuleList([nn.ConvTranspose1d(ch_in, ch, kernel, rate,
                                                              padding=(kernel - rate) // 2)]))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilations):
                self.resblocks.append(AMPBlock1(ch, k, d))
        self.activation_post = Activation1d(ch)
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=cfg.bias_at_final)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        kernels = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up[0](x)
            blocks = self.resblocks[i * kernels:(i + 1) * kernels]
            x = sum(block(x) for block in blocks) / kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.cfg.tanh_at_final else x.clamp(-1.0, 1.0)

    def load_official(self, state: dict[str, torch.Tensor]) -> "BigVGANGenerator":
        """Strict load of an official generator state dict with weight norm folded in."""
        self.load_state_dict(fold_weight_norm(state), strict=True)
        return self


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """weight = g * v / ||v|| (norm over all but dim 0), for both the legacy `weight_g/weight_v`
    names and torch's `parametrizations.weight.original0/1`."""
    out, pairs = {}, {}
    for key, value in state.items():
        for g_suffix, v_suffix in ((".weight_g", ".weight_v"),
                                   (".parametrizations.weight.original0",
                                    ".parametrizations.weight.original1")):
            if key.endswith(g_suffix) or key.endswith(v_suffix):
                stem = key[: -len(g_suffix)] if key.endswith(g_suffix) else key[: -len(v_suffix)]
                pairs.setdefault(stem, {})["g" if key.endswith(g_suffix) else "v"] = value
                break
        else:
            out[key] = value
    for stem, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise ValueError(f"{stem}: weight norm needs both g and v, found only {sorted(gv)}")
        # the same kernel torch's weight_norm uses, so folded weights are bit-identical
        out[f"{stem}.weight"] = torch._weight_norm(gv["v"], gv["g"], 0)
    return out
