"""Resumable, checksum-verified downloads of the official files (when online)."""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from engine.errors import UserError

_RELEASES = "https://github.com/hkchengrex/MMAudio/releases/download/v0.1/"
_HUB = "https://huggingface.co/hkchengrex/MMAudio/resolve/main/weights/"

# (kind, name) -> (url, md5); the addresses MMAudio itself downloads from
OFFICIAL_DOWNLOADS: dict[tuple[str, str], tuple[str, str]] = {
    ("network", "small_16k"): (_HUB + "mmaudio_small_16k.pth", "af93cde404179f58e3919ac085b8033b"),
    ("network", "small_44k"): (_HUB + "mmaudio_small_44k.pth", "babd74c884783d13701ea2820a5f5b6d"),
    ("network", "medium_44k"): (_HUB + "mmaudio_medium_44k.pth", "5a56b6665e45a1e65ada534defa903d0"),
    ("network", "large_44k"): (_HUB + "mmaudio_large_44k.pth", "fed96c325a6785b85ce75ae1aafd2673"),
    ("network", "large_44k_v2"): (_HUB + "mmaudio_large_44k_v2.pth",
                                  "01ad4464f049b2d7efdaa4c1a59b8dfe"),
    ("vae", "v1-16"): (_RELEASES + "v1-16.pth", "69f56803f59a549a1a507c93859fd4d7"),
    ("vae", "v1-44"): (_RELEASES + "v1-44.pth", "fab020275fa44c6589820ce025191600"),
    ("vocoder", "bigvgan_v1_16k"): (_RELEASES + "best_netG.pt", "eeaf372a38a9c31c362120aba2dde292"),
    ("synchformer", "synchformer"): (_RELEASES + "synchformer_state_dict.pth",
                                     "5b2f5594b0730f70e41e549b7c94390c"),
}

CHUNK = 1 << 20


class DownloadError(UserError):
    """A download that failed; nothing was registered and no partial file is kept unless it can
    be resumed."""


def download(url: str, destination: Path, *, md5: str, timeout: float = 30.0,
             progress: bool = True) -> Path:
    """Download `url` to `destination`, resuming a `.part` file with an HTTP Range request;
    the MD5 is verified before the file appears under its final name."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    host = urlparse(url).netloc or url
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # already complete
            response = None
        else:
            raise DownloadError(f"{url}: the server answered {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot reach {host} ({reason}); this machine seems to be offline: "
                            f"download {destination.name} elsewhere and run "
                            f"`mfmjt weights import PATH`") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            length = response.headers.get("Content-Length")
            total = (int(length) + (have if resumed else 0)) if length else None
            from tqdm import tqdm
            with open(part, mode) as fh, tqdm(total=total, initial=have if resumed else 0,
                                              unit="B", unit_scale=True, disable=not progress,
                                              desc=destination.name) as bar:
                while block := response.read(CHUNK):
                    fh.write(block)
                    bar.update(len(block))
    digest = hashlib.md5()
    with open(part, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: checksum mismatch (md5 {digest.hexdigest()}, expected {md5}); "
                            f"the file was discarded and nothing was registered")
    os.replace(part, destination)
    return destination
