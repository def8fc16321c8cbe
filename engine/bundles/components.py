"""The codec and the conditioning encoders a bundle describes, built from its extra files."""
from __future__ import annotations

from engine.bundles.format import Bundle, BundleError

STARTER_CODEC_FILE = "codec.safetensors"


def load_codec(bundle: Bundle):
    """The bundle's codec: `encode(wave) -> posterior`, `decode(latent) -> wave`."""
    codec = bundle.manifest.get("codec") or {}
    if codec.get("kind") == "starter":
        from engine.codec.starter import StarterCodec
        state = bundle.extra.get(codec.get("file", STARTER_CODEC_FILE))
        if state is None:
            raise BundleError(f"{bundle.path}: the starter codec file "
                              f"{codec.get('file', STARTER_CODEC_FILE)!r} is missing")
        model = StarterCodec()
        model.load_state_dict(state, strict=True)
        return model.eval()
    raise BundleError(f"{bundle.path}: codec {codec.get('kind') or codec!r} cannot encode audio "
                      f"for training here; use a bundle with a starter codec")


def load_encoder(bundle: Bundle):
    """The bundle's conditioning encoder (FeatureEncoder)."""
    encoders = bundle.manifest.get("encoders") or {}
    if encoders.get("kind") == "starter":
        from engine.features.starter import StarterEncoder
        return StarterEncoder(seed=int(encoders.get("seed", StarterEncoder().seed)))
    raise BundleError(f"{bundle.path}: encoders {encoders!r} are not supported here; use a "
                      f"bundle with starter encoders")


def starter_descriptors(encoder_seed: int) -> tuple[dict, dict]:
    """Manifest entries (codec, encoders) of a bundle built on the starter stack."""
    return ({"kind": "starter", "file": STARTER_CODEC_FILE, "sampling_rate": 16000},
            {"kind": "starter", "seed": encoder_seed})
