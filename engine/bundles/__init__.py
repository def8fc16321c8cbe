"""Model bundles (safetensors + JSON manifest)."""
from engine.bundles.format import (FORMAT_VERSION, MANIFEST_NAME, NETWORK_FILE, Bundle, BundleError,
                                   load_bundle, read_manifest, save_bundle, sha256_file)

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "NETWORK_FILE", "Bundle", "BundleError",
           "load_bundle", "read_manifest", "save_bundle", "sha256_file"]
