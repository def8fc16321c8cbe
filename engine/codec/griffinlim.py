"""Weight-free vocoder fallback: log-mel -> linear magnitude (non-negative least squares through
the mel basis' pseudo-inverse) -> Griffin-Lim phase reconstruction (torchaudio).
Lower quality than BigVGAN, but it needs no weights and runs anywhere."""
from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import nn

from engine.codec.mel import MelConfig, slaney_mel_basis


class GriffinLimVocoder(nn.Module):
    def __init__(self, cfg: MelConfig, *, n_iter: int = 32, seed: int = 0):
        super().__init__()
        self.cfg, self.n_iter, self.seed = cfg, n_iter, seed
        self.register_buffer("inverse_basis", torch.linalg.pinv(slaney_mel_basis(cfg)),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win), persistent=False)

    @torch.no_grad()
    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-mel -> (B, 1, T * hop) waveform in [-1, 1]."""
        cfg = self.cfg
        mel = torch.pow(10.0, log_mel) if cfg.log == "log10" else torch.exp(log_mel)
        magnitude = (self.inverse_basis @ mel).clamp(min=0.0)  # (B, n_fft/2 + 1, T)
        frames = log_mel.shape[-1]
        # our frame i is centred at i * hop + hop / 2 (non-centred STFT after (n_fft - hop) / 2
        # reflect padding); torchaudio centres frame j at j * hop. With one replicated frame on
        # each side, our frame i is its frame i + 1, so the output starts hop / 2 in.
        padded = torch.cat([magnitude[..., :1], magnitude, magnitude[..., -1:]], dim=-1)
        # griffinlim's random phase init draws from the global RNG: seed it without leaking
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            wave = AF.griffinlim(padded, self.window, cfg.n_fft, cfg.hop, cfg.win, power=1.0,
                                 n_iter=self.n_iter, momentum=0.99, length=None, rand_init=True)
        wave = wave[..., cfg.hop // 2: cfg.hop // 2 + frames * cfg.hop]
        return wave.clamp(-1.0, 1.0).unsqueeze(1)
