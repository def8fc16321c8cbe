"""The starter vocoder (codec version 2): Vocos (Siuzdak 2023), a ConvNeXt backbone at the mel
frame rate and an inverse-STFT head, built from the `vocos` package's own modules.

Why Vocos rather than a small BigVGAN: the head predicts one STFT frame (magnitude and phase) per mel
frame, so a steady partial is one steady bin rather than something an upsampling stack must rebuild
sample by sample; on the synth world a BigVGAN of our size turned ringing plates into buzzy combs
(issue 14), and the Vocos head runs several times faster on a CPU. With n_fft 1024 and hop 256 and
"same" padding, its frames line up exactly with MEL_16K's (both pad (n_fft - hop) / 2), so T mel
frames give T * 256 samples.

At inference the mel is extended at both ends by repeating its first and last frames for as far
as the network sees (`edge_frames`), and the extra samples are cut off again: the backbone's
convolutions pad with zeros, and a zero log-mel frame reads as a very loud one, so without this a
trained vocoder can start every take with a click (the ninth starter build's did, in 16 of 50
unseen scenes: 16 false onsets at 31 ms; issue 14). Training is unchanged (the Vocos recipe's
own random crops).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.codec.postfilter import PartialContrast, sharpen_partials


@dataclass(frozen=True)
class VocosConfig:
    num_mels: int = 80
    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 8
    n_fft: int = 1024
    hop: int = 256


class VocosVocoder(nn.Module):
    def __init__(self, cfg: VocosConfig = VocosConfig()):
        # imported here: vocos pulls in encodec and huggingface_hub, which only this codec needs
        from vocos.heads import ISTFTHead
        from vocos.models import VocosBackbone
        super().__init__()
        self.cfg = cfg
        self.backbone = VocosBackbone(input_channels=cfg.num_mels, dim=cfg.dim,
                                      intermediate_dim=cfg.intermediate_dim,
                                      num_layers=cfg.num_layers)
        self.head = ISTFTHead(dim=cfg.dim, n_fft=cfg.n_fft, hop_length=cfg.hop, padding="same")
        # a bundle's codec turns it on (`codec.partial_contrast`); never applied in train mode
        self.partial_contrast: PartialContrast | None = None

    @property
    def hop(self) -> int:
        return self.cfg.hop

    @property
    def edge_frames(self) -> int:
        """How many mel frames beyond a clip's ends reach its output: the embedding and each
        ConvNeXt block's depthwise convolution (kernel 7: 3 frames a side; read from the modules,
        so that another `vocos` cannot change it silently), then the inverse STFT's overlap
        (n_fft / hop / 2 frames a side). 29 for the starter vocoder."""
        convs = [self.backbone.embed] + [block.dwconv for block in self.backbone.convnext]
        return sum(conv.kernel_size[0] // 2 for conv in convs) + self.cfg.n_fft // self.cfg.hop // 2

    def forward(self, mel: torch.Tensor, gate_mel: torch.Tensor | None = None) -> torch.Tensor:
        """(B, num_mels, T) log-mel -> (B, 1, T * hop), as BigVGANGenerator returns. `gate_mel`:
        the mel the postfilter reads partials from when `mel` carries sampled texture (the
        decoded mean; default `mel` itself)."""
        if self.training:
            return self.head(self.backbone(mel)).clamp(-1.0, 1.0).unsqueeze(1)
        edge, frames = self.edge_frames, mel.shape[-1]
        padded = F.pad(mel, (edge, edge), mode="replicate")
        gate = None if gate_mel is None else F.pad(gate_mel, (edge, edge), mode="replicate")
        wave = self._render(padded, gate, valid=(edge, edge + frames))
        return wave[..., edge * self.hop: (edge + frames) * self.hop]

    def _render(self, mel: torch.Tensor, gate_mel: torch.Tensor | None,
                valid: tuple[int, int]) -> torch.Tensor:
        if self.partial_contrast is None:
            return self.head(self.backbone(mel)).clamp(-1.0, 1.0).unsqueeze(1)
        # the head's own arithmetic (vocos.heads.ISTFTHead.forward), with the magnitude
        # postfiltered before the inverse STFT
        out = self.head.out(self.backbone(mel)).transpose(1, 2)
        log_magnitude, phase = out.chunk(2, dim=1)
        magnitude = sharpen_partials(torch.exp(log_magnitude).clip(max=1e2),
                                     mel if gate_mel is None else gate_mel, self.partial_contrast,
                                     valid)
        spectrum = magnitude * (torch.cos(phase) + 1j * torch.sin(phase))
        return self.head.istft(spectrum).clamp(-1.0, 1.0).unsqueeze(1)
