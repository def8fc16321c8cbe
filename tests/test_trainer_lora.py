"""LoRA (peft) fine-tuning: only adapters train; the merged export equals the adapted model."""
import dataclasses

import pytest
import torch

from engine.bundles import load_bundle, save_bundle
from tests.conftest import features, randomize
from tests.test_trainer_loop import shards, starter_sized_network  # noqa: F401  (fixture)
from trainer.loop import train
from trainer.lora import add_lora, freeze, lora_targets, merge_lora
from trainer.recipe import load_recipe


def test_targets_are_linear_attention_and_mlp_projections():
    net = starter_sized_network()
    targets = lora_targets(net)
    assert "joint_blocks.0.latent_block.attn.qkv" in targets
    assert "joint_blocks.0.text_block.ffn.w1" in targets
    assert "fused_blocks.0.ffn.w1" not in targets  # a Conv1d MLP


def test_lora_trains_only_adapters_and_export_equals_the_adapted_model(shards, tmp_path):  # noqa: F811
    network = randomize(starter_sized_network())
    base_before = {k: v.clone() for k, v in network.state_dict().items()}
    lora = add_lora(network, rank=4, alpha=8)
    trainable = {n for n, p in network.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    recipe = dataclasses.replace(load_recipe("debug"), steps=4, lr=1e-2)
    train(network, shards, recipe, tmp_path / "run")
    for name, value in network.state_dict().items():
        if ".lora_" not in name:
            base_name = name.replace(".base_layer", "")
            assert torch.equal(value, base_before[base_name]), name  # the base is untouched
    f = features(network, 1.0)
    f = {"latent": f["latent"], "clip_f": torch.randn(2, 8, 64), "sync_f": torch.randn(2, 16, 72),
         "text_f": torch.randn(2, 16, 64)}
    with torch.no_grad():
        adapted = network.eval()(**f, t=0.2, dt=0.8)
        merged = merge_lora(lora)
        assert torch.allclose(merged(**f, t=0.2, dt=0.8), adapted, atol=1e-5)
    bundle = load_bundle(save_bundle(tmp_path / "b", merged, preset="tiny"))  # plain names
    with torch.no_grad():
        assert torch.allclose(bundle.network(**f, t=0.2, dt=0.8), adapted, atol=1e-5)
        assert not torch.allclose(adapted, _base_output(base_before, f), atol=1e-4)


def _base_output(state, f):
    net = starter_sized_network()
    net.load_state_dict(state)
    return net.eval()(**f, t=0.2, dt=0.8)


def test_freezing_by_prefix():
    net = starter_sized_network()
    frozen = freeze(net, ["joint_blocks", "audio_input_proj"])
    assert frozen > 0
    assert not net.joint_blocks[0].latent_block.attn.qkv.weight.requires_grad
    assert net.fused_blocks[0].attn.qkv.weight.requires_grad
    with pytest.raises(ValueError, match="no parameters match"):
        freeze(net, ["nothing_here"])
