"""Audio codec: mel front ends, the latent VAE, BigVGAN vocoders (starter codec to come)."""
from engine.codec.mel import MEL_16K, MEL_44K, MelConfig, MelConverter, slaney_mel_basis

__all__ = ["MEL_16K", "MEL_44K", "MelConfig", "MelConverter", "slaney_mel_basis"]
from engine.codec.vae import VAE_16K, VAE_44K, LatentPosterior, MelVAE, VAEConfig

__all__ += ["VAE_16K", "VAE_44K", "LatentPosterior", "MelVAE", "VAEConfig"]
from engine.codec.bigvgan import (BIGVGAN_V1_16K, BIGVGAN_V2_44K, BigVGANConfig, BigVGANGenerator,
                                  fold_weight_norm)

__all__ += ["BIGVGAN_V1_16K", "BIGVGAN_V2_44K", "BigVGANConfig", "BigVGANGenerator",
            "fold_weight_norm"]
from engine.codec.griffinlim import GriffinLimVocoder

__all__ += ["GriffinLimVocoder"]
from engine.codec.losses import multi_resolution_stft_loss
from engine.codec.starter import CODEC_VERSION, STARTER_VAE, STARTER_VOCODER, StarterCodec

__all__ += ["CODEC_VERSION", "STARTER_VAE", "STARTER_VOCODER", "StarterCodec", "multi_resolution_stft_loss"]
