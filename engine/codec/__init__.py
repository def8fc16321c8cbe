"""Audio codec: mel front ends and the latent VAE (vocoders and the starter codec to come)."""
from engine.codec.mel import MEL_16K, MEL_44K, MelConfig, MelConverter, slaney_mel_basis

__all__ = ["MEL_16K", "MEL_44K", "MelConfig", "MelConverter", "slaney_mel_basis"]
from engine.codec.vae import VAE_16K, VAE_44K, LatentPosterior, MelVAE, VAEConfig

__all__ += ["VAE_16K", "VAE_44K", "LatentPosterior", "MelVAE", "VAEConfig"]
