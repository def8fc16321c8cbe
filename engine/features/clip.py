"""CLIP image and text features through open_clip (MODEL.md §4).

Images: 8 fps frames squashed to 384 x 384 (bicubic), OpenAI CLIP mean / std, one L2-normalised
pooled embedding per frame (1024-d for DFN5B ViT-H-14-378-quickgelu; its 14-px patches make 384 and
378 inputs equivalent). Text: the model's tokenizer (77 tokens) and the full token sequence after
`ln_final`, each token L2-normalised (not the pooled projection). Weights come from a local
safetensors file that the weight registry provides; nothing is downloaded here.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import UserError

OFFICIAL_MODEL = "ViT-H-14-378-quickgelu"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _weights_digest(path: Optional[Path]) -> str:
    if path is None:
        return "random"
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


class ClipFeatures:
    """open_clip model by name + a local weights file (safetensors only)."""

    def __init__(self, model_name: str = OFFICIAL_MODEL, weights: Optional[Path | str] = None, *,
                 state: Optional[dict[str, torch.Tensor]] = None, config: Optional[dict] = None,
                 weights_id: Optional[str] = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, batch_size: int = 16):
        """`weights`: a safetensors file, or `state`: its tensors already read (from a bundle,
        named by `weights_id` in the version). `config`: open_clip's architecture dictionary
        (embed_dim, vision_cfg, text_cfg, quick_gelu) when it is not a model open_clip knows by
        name, as a bundle records it."""
        import open_clip
        from open_clip.model import CLIP
        from open_clip.tokenizer import SimpleTokenizer
        from safetensors.torch import load_file

        self.model_name = model_name
        self.weights = Path(weights) if weights is not None else None
        self.weights_id = weights_id
        self.batch_size = batch_size
        if self.weights is not None and self.weights.suffix != ".safetensors":
            raise UserError(f"{self.weights}: CLIP weights must be a .safetensors file "
                            f"(import official files with `mfmjt weights import`)", field="bundle")
        if config is not None:
            model = CLIP(**config)
            self.tokenizer = SimpleTokenizer(
                context_length=int(config["text_cfg"].get("context_length", 77)))
        else:
            model = open_clip.create_model(model_name, pretrained=None)
            self.tokenizer = open_clip.get_tokenizer(model_name)
        if self.weights is not None:
            state = load_file(str(self.weights))
        if state is not None:
            model.load_state_dict(state, strict=True)
        self.model = model.to(device=device, dtype=dtype).eval()
        self._token_features: list[torch.Tensor] = []
        self.model.ln_final.register_forward_hook(
            lambda module, args, output: self._token_features.append(output))
        self.dim = int(self.model.ln_final.normalized_shape[0])
        self.embed_dim = int(self.model.text_projection.shape[1]) \
            if isinstance(self.model.text_projection, torch.Tensor) \
            else int(self.model.text_projection.out_features)
        self.context_length = int(self.model.context_length)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def version(self) -> str:
        return f"{self.model_name}:{self.weights_id or _weights_digest(self.weights)}"

    @torch.no_grad()  # not inference_mode: callers may use the features where autograd runs
    def encode_images(self, frames: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, embed_dim) float32, L2-normalised."""
        dtype = next(self.model.parameters()).dtype
        mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        outputs = []
        for i in range(0, len(frames), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(frames[i:i + self.batch_size]))
            x = batch.to(self.device).permute(0, 3, 1, 2).float() / 255.0
            x = ((x - mean) / std).to(dtype)
            outputs.append(self.model.encode_image(x, normalize=True).float())
        return torch.cat(outputs).cpu()

    @torch.no_grad()  # not inference_mode: callers may use the features where autograd runs
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, 77, width) float32: every token after ln_final, each L2-normalised."""
        tokens = self.tokenizer(list(prompts)).to(self.device)
        self._token_features.clear()
        self.model.encode_text(tokens)
        hidden = self._token_features.pop()  # (B, 77, width), captured at ln_final
        return F.normalize(hidden.float(), dim=-1).cpu()
