"""Parameter-efficient fine-tuning with peft's LoRA on the attention and MLP projections, and
freezing options. Convolutional MLPs (audio and CLIP streams) are not adapted: peft's LoRA for
Conv1d would convolve over the wrong axis of our channel-last layers."""
from __future__ import annotations

from peft import LoraConfig, LoraModel
from torch import nn

from engine.errors import UserError


def lora_targets(network: nn.Module) -> list[str]:
    """Linear attention (qkv) and MLP projections (text-stream FFN, global-condition MLP)."""
    return [name for name, module in network.named_modules()
            if isinstance(module, nn.Linear)
            and (name.endswith("attn.qkv") or ".ffn.w" in name
                 or name.startswith("global_cond_mlp.w"))]


def add_lora(network: nn.Module, *, rank: int = 8, alpha: int = 16,
             dropout: float = 0.0) -> LoraModel:
    """Inject LoRA adapters in place; only the adapters stay trainable."""
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=lora_targets(network))
    return LoraModel(network, config, "default")


def merge_lora(lora: LoraModel) -> nn.Module:
    """The plain network with adapters folded into the base weights (official key names)."""
    return lora.merge_and_unload()


def freeze(network: nn.Module, prefixes: list[str]) -> int:
    """Freeze parameters whose names start with any prefix; returns how many were frozen."""
    count = 0
    for name, param in network.named_parameters():
        if any(name.startswith(p) for p in prefixes):
            param.requires_grad_(False)
            count += param.numel()
    if prefixes and count == 0:
        raise UserError(f"no parameters match {prefixes}; names start with e.g. "
                        f"{sorted({n.split('.')[0] for n, _ in network.named_parameters()})}", field="freeze")
    return count


__all__ = ["add_lora", "freeze", "lora_targets", "merge_lora"]
