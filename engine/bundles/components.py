"""The codec and the conditioning encoders a bundle describes, built from its extra files."""
from __future__ import annotations

from engine.bundles.format import Bundle, BundleError

STARTER_CODEC_FILE = "codec.safetensors"


def load_codec(bundle: Bundle):
    """The bundle's codec: `encode(wave) -> posterior`, `decode(latent) -> wave`."""
    codec = bundle.manifest.get("codec") or {}
    if codec.get("kind") == "starter":
        from engine.codec.starter import CODEC_VERSIONS, StarterCodec
        state = bundle.extra.get(codec.get("file", STARTER_CODEC_FILE))
        if state is None:
            raise BundleError(f"{bundle.path}: the starter codec file "
                              f"{codec.get('file', STARTER_CODEC_FILE)!r} is missing")
        version = codec.get("version", 1)  # bundles made before versions were recorded hold v1
        if version not in CODEC_VERSIONS:
            raise BundleError(f"{bundle.path}: starter codec version {version!r} is newer than "
                              f"this engine knows ({max(CODEC_VERSIONS)}); update MF-MJT Foley")
        mel_noise = float(codec.get("mel_noise", 0.0))  # absent in bundles made before it
        if not 0.0 <= mel_noise <= 1.0:
            raise BundleError(f"{bundle.path}: codec.mel_noise {mel_noise} is outside 0..1; "
                              f"re-export the bundle")
        from engine.codec.postfilter import MAX_ALPHA
        contrast = codec.get("partial_contrast", 0.0)  # absent in bundles made before it
        if isinstance(contrast, bool) or not isinstance(contrast, (int, float)) \
                or not 0.0 <= contrast <= MAX_ALPHA:
            raise BundleError(f"{bundle.path}: codec.partial_contrast {contrast!r} must be a "
                              f"number from 0 (off) to {MAX_ALPHA:g}; fix the manifest or "
                              f"re-export the bundle")
        if contrast and version == 1:
            raise BundleError(f"{bundle.path}: codec.partial_contrast needs the Vocos vocoder of "
                              f"codec version 2, this bundle's codec is version 1; remove the key")
        model = StarterCodec(version, mel_noise=mel_noise, partial_contrast=float(contrast))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"{bundle.path}: the starter codec file does not match codec "
                              f"version {version} ({str(exc).splitlines()[0]}); re-export the "
                              f"bundle") from None
        expected = bundle.network.config.latent_dim
        if model.latent_channels != expected:
            raise BundleError(f"{bundle.path}: the network expects {expected}-channel latents but "
                              f"its starter codec (version {version}) makes "
                              f"{model.latent_channels}; re-export the bundle with the codec it "
                              f"was trained on")
        # bake the VAE's weight normalisation once (the same arithmetic its layers repeat on
        # every call otherwise: ~10 % of a one-step regenerate on a CPU); inference only
        model.vae.remove_weight_norm()
        return model.eval()
    if "vae" in codec and "mel" in codec:
        return _official_codec(bundle, codec)
    raise BundleError(f"{bundle.path}: codec {codec!r} is not one this engine knows")


class OfficialCodec:
    """MMAudio's codec from an assembled bundle: mel front end, VAE and BigVGAN vocoder."""

    def __init__(self, mel, vae, vocoder):
        self.mel, self.vae, self.vocoder = mel, vae, vocoder

    @property
    def sampling_rate(self) -> int:
        return self.mel.cfg.sampling_rate

    def encode(self, wave):
        return self.vae.encode(self.mel(wave))

    def decode(self, latent):
        return self.vocoder(self.vae.decode(latent)).squeeze(1)

    @property
    def device(self):
        return next(self.vae.parameters()).device

    def to(self, device) -> "OfficialCodec":
        self.mel, self.vae, self.vocoder = (m.to(device) for m in (self.mel, self.vae, self.vocoder))
        return self


def _official_codec(bundle: Bundle, codec: dict) -> OfficialCodec:
    from engine.codec.bigvgan import BIGVGAN_V1_16K, BIGVGAN_V2_44K, BigVGANGenerator
    from engine.codec.mel import MEL_16K, MEL_44K, MelConverter
    from engine.codec.vae import VAE_16K, VAE_44K, MelVAE
    sixteen = codec["mel"] == "16k"
    vae_state = bundle.extra[codec["vae"]["file"]]
    vae = MelVAE(VAE_16K if sixteen else VAE_44K,
                 with_encoder=any(k.startswith("encoder.") for k in vae_state))
    vae.load_official(dict(vae_state))
    vocoder = BigVGANGenerator(BIGVGAN_V1_16K if sixteen else BIGVGAN_V2_44K)
    vocoder.load_official(dict(bundle.extra[codec["vocoder"]["file"]]))
    return OfficialCodec(MelConverter(MEL_16K if sixteen else MEL_44K), vae.eval(), vocoder.eval())


MMAUDIO_ENCODERS_VERSION = 1  # the manifest layout of CLIP + Synchformer below


def load_encoder(bundle: Bundle, *, device: str = "cpu"):
    """The bundle's conditioning encoder (FeatureEncoder), its models on `device`."""
    encoders = bundle.manifest.get("encoders") or {}
    kind = encoders.get("kind")
    if kind == "starter":
        from engine.features.starter import StarterEncoder
        return StarterEncoder(seed=int(encoders.get("seed", StarterEncoder().seed)))
    if kind in (None, "mmaudio"):  # assembled bundles; those made before `kind` have none
        return _mmaudio_encoder(bundle, encoders, device)
    raise BundleError(f"{bundle.path}: encoders of kind {kind!r} are not one this engine knows; "
                      f"update MF-MJT Foley or use another bundle")


def _missing_encoder(bundle: Bundle, what: str, fetch: str) -> BundleError:
    preset = bundle.manifest["network"].get("preset") or "PRESET"
    return BundleError(f"{bundle.path}: the bundle has no {what}, which MMAudio's conditioning "
                       f"needs; {fetch}, then `mfmjt weights assemble --preset {preset} --out "
                       f"NEW_FOLDER`")


def clip_entry(model: str, config: dict | None = None) -> dict:
    """The manifest's `encoders.clip`: an open_clip model by name, or by its architecture."""
    entry = {"kind": "open_clip", "model": model, "file": "clip.safetensors"}
    return {**entry, "config": config} if config is not None else entry


def sync_entry(config) -> dict:
    """The manifest's `encoders.sync`: Synchformer's visual extractor and its architecture."""
    import dataclasses
    return {"kind": "synchformer", "file": "synchformer.safetensors",
            "config": dataclasses.asdict(config)}


def _mmaudio_encoder(bundle: Bundle, encoders: dict, device: str):
    from engine.bundles.assemble import CLIP_NAME
    from engine.features.clip import ClipFeatures
    from engine.features.official import MMAudioEncoder
    from engine.features.synchformer import SynchformerConfig, SynchformerFeatures
    version = encoders.get("version", MMAUDIO_ENCODERS_VERSION)
    if version != MMAUDIO_ENCODERS_VERSION:
        raise BundleError(f"{bundle.path}: MMAudio encoders of layout version {version!r}; this "
                          f"engine reads version {MMAUDIO_ENCODERS_VERSION}: update MF-MJT Foley "
                          f"or assemble the bundle again")
    clip_entry, sync_entry = encoders.get("clip"), encoders.get("sync")
    if clip_entry is None or clip_entry.get("file") not in bundle.extra:
        # MMAudio loads it from apple/DFN5B-CLIP-ViT-H-14-384 (Hugging Face), not its releases
        raise _missing_encoder(bundle, "CLIP image and text encoder",
                               f"`mfmjt weights import open_clip_pytorch_model.bin --kind clip "
                               f"--name {CLIP_NAME}` (the open_clip file of "
                               f"apple/DFN5B-CLIP-ViT-H-14-384)")
    if sync_entry is None or sync_entry.get("file") not in bundle.extra:
        raise _missing_encoder(bundle, "Synchformer video encoder",
                               "`mfmjt weights download synchformer synchformer` (or `mfmjt "
                               "weights import synchformer_state_dict.pth`)")
    files = bundle.manifest["files"]
    try:
        clip = ClipFeatures(clip_entry.get("model", ""), state=bundle.extra[clip_entry["file"]],
                            config=clip_entry.get("config"), device=device,
                            weights_id=files[clip_entry["file"]]["sha256"][:16])
        sync = SynchformerFeatures(SynchformerConfig(**sync_entry.get("config", {})))
        sync.load_official(bundle.extra[sync_entry["file"]])
    except (RuntimeError, TypeError, KeyError) as err:  # strict loads: keys or shapes differ
        raise BundleError(f"{bundle.path}: its CLIP or Synchformer file does not match the "
                          f"architecture the manifest names ({str(err).splitlines()[0][:200]}); "
                          f"import the official files again and re-assemble") from None
    encoder = MMAudioEncoder(clip, sync.to(device),
                             synchformer_version=files[sync_entry["file"]]["sha256"][:16])
    cfg = bundle.network.config
    found = (encoder.clip_dim, encoder.sync_dim, encoder.text_dim, encoder.text_len)
    wanted = (cfg.clip_dim, cfg.sync_dim, cfg.text_dim, cfg.text_seq_len)
    if found != wanted:
        raise BundleError(f"{bundle.path}: its encoders give features of sizes (clip, sync, text, "
                          f"text tokens) {found}, the network expects {wanted}; assemble the "
                          f"bundle from the encoders of its preset")
    return encoder


def starter_descriptors(encoder_seed: int, *, mel_noise: float = 0.0,
                        partial_contrast: float = 0.0) -> tuple[dict, dict]:
    """Manifest entries (codec, encoders) of a bundle built on the starter stack."""
    from engine.codec.starter import CODEC_VERSION
    return ({"kind": "starter", "version": CODEC_VERSION, "file": STARTER_CODEC_FILE,
             "sampling_rate": 16000, "mel_noise": mel_noise,
             **({"partial_contrast": partial_contrast} if partial_contrast else {})},
            {"kind": "starter", "seed": encoder_seed})
