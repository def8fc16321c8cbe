"""Audio codec: mel front ends (later: latent VAE, vocoders, starter codec)."""
from engine.codec.mel import MEL_16K, MEL_44K, MelConfig, MelConverter, slaney_mel_basis

__all__ = ["MEL_16K", "MEL_44K", "MelConfig", "MelConverter", "slaney_mel_basis"]
