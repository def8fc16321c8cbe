"""Model bundles (safetensors + JSON manifest) and official MMAudio imports."""
from engine.bundles.format import (FORMAT_VERSION, MANIFEST_NAME, NETWORK_FILE, Bundle, BundleError,
                                   load_bundle, read_manifest, save_bundle, sha256_file)
from engine.bundles.official import (OFFICIAL_FILES, OfficialFile, OfficialImportError,
                                     import_mmaudio, load_official_state, md5_file, recognise)
from engine.bundles.resolve import resolve_bundle

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "NETWORK_FILE", "OFFICIAL_FILES", "Bundle",
           "BundleError", "OfficialFile", "OfficialImportError", "import_mmaudio",
           "load_bundle", "load_official_state", "md5_file", "read_manifest", "recognise",
           "resolve_bundle", "save_bundle", "sha256_file"]
