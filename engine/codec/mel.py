"""Mel front ends of MMAudio's codecs (MODEL.md §5), from waveform to log-mel.

Waveform clamped to [-1, 1], reflect-padded by (n_fft - hop) / 2 on each side, STFT without
centering (Hann window), magnitude sqrt(re^2 + im^2 + 1e-9), a Slaney-style mel basis (librosa's
default, computed here in float64 like librosa so official VAEs see the same input), then log10 (16 kHz) or ln (44.1 kHz) of clamp(x, 1e-5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    sampling_rate: int
    n_fft: int
    hop: int
    win: int
    n_mels: int
    fmin: float
    fmax: float
    log: str  # "log10" or "ln"

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.hop


MEL_16K = MelConfig(sampling_rate=16000, n_fft=1024, hop=256, win=1024, n_mels=80, fmin=0.0,
                    fmax=8000.0, log="log10")
MEL_44K = MelConfig(sampling_rate=44100, n_fft=2048, hop=512, win=2048, n_mels=128, fmin=0.0,
                    fmax=22050.0, log="ln")


_F_SP = 200.0 / 3  # Slaney: linear below 1 kHz (15 mels), logarithmic above
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    above = hz >= _MIN_LOG_HZ
    return np.where(above, _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-12) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    above = mel >= _MIN_LOG_MEL
    return np.where(above, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), hz)


def slaney_mel_basis(cfg: MelConfig) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, each normalised to
    unit area (2 / bandwidth), computed in float64 and stored in float32."""
    fft_freqs = np.fft.rfftfreq(cfg.n_fft, d=1.0 / cfg.sampling_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    weights = np.zeros((cfg.n_mels, len(fft_freqs)), dtype=np.float32)
    for i in range(cfg.n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:cfg.n_mels + 2] - edges[:cfg.n_mels]))[:, None]
    return torch.from_numpy(weights)


class MelConverter(nn.Module):
    def __init__(self, cfg: MelConfig):
        super().__init__()
        if cfg.log not in ("log10", "ln"):
            raise ValueError(f"log must be 'log10' or 'ln', got {cfg.log!r}")
        self.cfg = cfg
        self.register_buffer("mel_basis", slaney_mel_basis(cfg), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, n_mels, frames), frames = samples // hop for whole hops."""
        cfg = self.cfg
        if waveform.ndim != 2:
            raise ValueError(f"waveform must be (B, samples), got {tuple(waveform.shape)}")
        pad = (cfg.n_fft - cfg.hop) // 2
        x = F.pad(waveform.clamp(-1.0, 1.0).unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(x, cfg.n_fft, hop_length=cfg.hop, win_length=cfg.win,
                          window=self.window, center=False, normalized=False, onesided=True,
                          return_complex=True)
        magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        mel = torch.matmul(self.mel_basis, magnitude).clamp(min=1e-5)
        return torch.log10(mel) if cfg.log == "log10" else torch.log(mel)
