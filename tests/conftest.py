"""Shared fixtures: small networks with non-trivial weights, and their inputs."""
from __future__ import annotations

import pytest
import torch

from engine import compiled_extensions
from engine.model import build_network


def pytest_configure(config):
    """A torch set that does not load together stops the run here, in one line per component,
    instead of as an undefined symbol deep inside the codec tests."""
    problems = compiled_extensions.problems()
    if problems:
        raise pytest.UsageError("\n".join(p.line() for p in problems))


def randomize(network, seed: int = 0, *, keep_delta_zero: bool = True, std: float = 0.05):
    """Replace the (mostly zero-initialised) weights by random ones, so outputs are non-trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in network.named_parameters():
            if keep_delta_zero and name.startswith("dt_embed.mlp.2"):
                continue
            if name == "latent_std":
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return network.eval()


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Feature caches written by commands under test stay out of the user's cache folder."""
    monkeypatch.setenv("MFMJT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "user-cache"))


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return randomize(build_network("tiny"))


def features(network, duration: float, batch: int = 2, seed: int = 1):
    """Random features and a latent of the right lengths for `duration` seconds."""
    cfg = network.config
    lengths = cfg.lengths(duration)
    gen = torch.Generator().manual_seed(seed)
    return dict(
        latent=torch.randn(batch, lengths.latent, cfg.latent_dim, generator=gen),
        clip_f=torch.randn(batch, lengths.clip, cfg.clip_dim, generator=gen),
        sync_f=torch.randn(batch, lengths.sync, cfg.sync_dim, generator=gen),
        text_f=torch.randn(batch, cfg.text_seq_len, cfg.text_dim, generator=gen),
    )
