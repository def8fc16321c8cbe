"""The weight registry: official files imported once into safetensors under the user's data dir.

`import_file` recognises an official file by MD5 (or takes an explicit kind and name for a
re-saved or fine-tuned copy), reads it with `torch.load(weights_only=True)`, checks it loads
strictly into our implementation, and writes `<kind>-<name>.safetensors` atomically with its
source, checksums and licence in `index.json`. A failed import leaves the registry unchanged.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.atomic import atomic_target
from engine.errors import UserError
from engine.bundles.format import sha256_file
from engine.bundles.official import (LICENCE_WEIGHTS, OFFICIAL_FILES, OfficialFile,
                                     OfficialImportError, import_mmaudio, load_official_state,
                                     md5_file)

KINDS = ("network", "vae", "vocoder", "synchformer", "clip")
INDEX_NAME = "index.json"


class WeightNotFound(UserError):
    """A kind and name the registry does not hold: import or download it."""


@dataclass(frozen=True)
class RegistryEntry:
    kind: str
    name: str
    file: str
    sha256: str
    source_md5: str
    source_name: str
    official: bool
    licence: str
    imported_at: str

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.name}"


def _strict_check(module_factory, state: dict[str, torch.Tensor]) -> None:
    """Strict load onto the meta device: names and shapes checked, nothing allocated."""
    with torch.device("meta"):
        module = module_factory()
    module.load_state_dict(state, strict=True, assign=True)


def _validate(kind: str, name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Load into our implementation strictly (raises on a wrong file); returns what to store."""
    if kind == "network":
        import_mmaudio(state, name)
        return state
    if kind == "vae":
        from engine.codec.vae import VAE_16K, VAE_44K, MelVAE
        cfg = {"v1-16": VAE_16K, "v1-44": VAE_44K}.get(name)
        if cfg is None:
            raise OfficialImportError(f"unknown VAE {name!r}; expected v1-16 or v1-44")
        _strict_check(lambda: MelVAE(cfg), dict(state))
        return state
    if kind == "vocoder":
        from engine.codec.bigvgan import BIGVGAN_V1_16K, BIGVGAN_V2_44K, BigVGANGenerator
        cfg = {"bigvgan_v1_16k": BIGVGAN_V1_16K, "bigvgan_v2_44k": BIGVGAN_V2_44K}.get(name)
        if cfg is None:
            raise OfficialImportError(f"unknown vocoder {name!r}; expected bigvgan_v1_16k or "
                                      f"bigvgan_v2_44k")
        from engine.codec.bigvgan import fold_weight_norm
        _strict_check(lambda: BigVGANGenerator(cfg), fold_weight_norm(state))
        return state
    if kind == "synchformer":
        from engine.features.synchformer import STATE_PREFIX, SynchformerFeatures, layout_config
        own = {k: v for k, v in state.items() if k.startswith(STATE_PREFIX)}
        config = layout_config(own)  # the official one for the official file
        _strict_check(lambda: SynchformerFeatures(config), own)
        return own
    if kind == "clip":
        return state  # validated when an open_clip model of that name loads it
    raise OfficialImportError(f"unknown kind {kind!r}; expected one of {KINDS}")


def _read_any(path: Path) -> dict:
    """A registry file (safetensors) or an official .pth (weights_only)."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}
    return load_official_state(path)


class WeightRegistry:
    def __init__(self, root: Optional[Path | str] = None):
        if root is None:
            from engine.paths import weights_dir
            root = weights_dir()
        self.root = Path(root)

    # ------------------------------------------------------------------ index
    def _index_path(self) -> Path:
        return self.root / INDEX_NAME

    def _read_index(self) -> dict[str, dict]:
        path = self._index_path()
        if not path.exists():
            return {}
        return json.loads(path.read_text())

    def _write_index(self, index: dict[str, dict]) -> None:
        with atomic_target(self._index_path(), overwrite=True) as tmp:
            tmp.write_text(json.dumps(index, indent=2, sort_keys=True))

    def entries(self) -> list[RegistryEntry]:
        return [RegistryEntry(**v) for _, v in sorted(self._read_index().items())]

    def get(self, kind: str, name: str) -> Optional[RegistryEntry]:
        data = self._read_index().get(f"{kind}-{name}")
        return RegistryEntry(**data) if data else None

    def path_of(self, entry: RegistryEntry) -> Path:
        return self.root / entry.file

    def load(self, kind: str, name: str) -> dict[str, torch.Tensor]:
        entry = self.get(kind, name)
        if entry is None:
            raise WeightNotFound(f"{kind} {name!r} is not in the weight registry; import it with "
                                 f"`mfmjt weights import PATH` or `mfmjt weights download`")
        return _read_any(self.path_of(entry))

    # ------------------------------------------------------------------ import
    def import_file(self, path: Path | str, *, kind: Optional[str] = None,
                    name: Optional[str] = None) -> RegistryEntry:
        path = Path(path)
        if not path.is_file():
            raise OfficialImportError(f"{path}: file not found")
        md5 = md5_file(path)
        known: Optional[OfficialFile] = OFFICIAL_FILES.get(md5)
        if known is None and (kind is None or name is None):
            raise OfficialImportError(
                f"{path}: not an official MMAudio file (md5 {md5}); if it is a re-saved or "
                f"fine-tuned copy, name it: --kind {{{','.join(KINDS)}}} --name NAME")
        kind = kind or known.kind
        name = name or known.name
        if known is not None and (known.kind, known.name) != (kind, name):
            raise OfficialImportError(f"{path}: this is the official {known.kind} {known.name!r}, "
                                      f"not {kind} {name!r}")
        state = _read_any(path)
        try:
            to_store = _validate(kind, name, state)
        except (RuntimeError, ValueError) as err:
            raise OfficialImportError(f"{path}: does not load as {kind} {name!r}: "
                                      f"{str(err).splitlines()[0]}") from None
        file_name = f"{kind}-{name}.safetensors"
        with atomic_target(self.root / file_name, overwrite=True) as tmp:
            save_file({k: v.contiguous() for k, v in to_store.items()}, str(tmp),
                      metadata={"kind": kind, "name": name, "source_md5": md5,
                                "licence": LICENCE_WEIGHTS})
            entry = RegistryEntry(kind=kind, name=name, file=file_name, sha256=sha256_file(tmp),
                                  source_md5=md5, source_name=path.name, official=known is not None,
                                  licence=LICENCE_WEIGHTS,
                                  imported_at=_dt.datetime.now().isoformat(timespec="seconds"))
        index = self._read_index()
        index[entry.key] = asdict(entry)
        self._write_index(index)
        return entry

    # ------------------------------------------------------------------ maintenance
    def verify(self) -> list[tuple[RegistryEntry, Optional[str]]]:
        """(entry, problem or None) for every entry."""
        results = []
        for entry in self.entries():
            path = self.path_of(entry)
            if not path.is_file():
                results.append((entry, f"{path} is missing"))
            elif sha256_file(path) != entry.sha256:
                results.append((entry, f"{path}: sha256 does not match the registry (corrupt?)"))
            else:
                results.append((entry, None))
        return results

    def remove(self, kind: str, name: str) -> RegistryEntry:
        index = self._read_index()
        data = index.pop(f"{kind}-{name}", None)
        if data is None:
            raise WeightNotFound(f"{kind} {name!r} is not in the weight registry")
        self._write_index(index)
        (self.root / data["file"]).unlink(missing_ok=True)
        return RegistryEntry(**data)


    def download(self, kind: str, name: str, *, url: Optional[str] = None,
                 md5: Optional[str] = None, progress: bool = True) -> RegistryEntry:
        """Download an official file (or `url` with `md5`), import it, then drop the download."""
        from engine.bundles.download import OFFICIAL_DOWNLOADS, download
        if url is None or md5 is None:
            if (kind, name) not in OFFICIAL_DOWNLOADS:
                known = ", ".join(f"{k} {n}" for k, n in OFFICIAL_DOWNLOADS)
                raise WeightNotFound(f"no official download for {kind} {name!r}; known: {known}")
            official_url, official_md5 = OFFICIAL_DOWNLOADS[(kind, name)]
            url, md5 = url or official_url, md5 or official_md5
        target = self.root / "downloads" / Path(url.split("?")[0]).name
        path = download(url, target, md5=md5, progress=progress)
        try:
            return self.import_file(path, kind=kind, name=name)
        finally:
            path.unlink(missing_ok=True)
