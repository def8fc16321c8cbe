"""Descriptions stored inside WAV / BWF files: bext Description, iXML NOTE, LIST/INFO comment.
Walks the RIFF chunks without reading the audio data."""
from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Optional

_NOTE = re.compile(r"<NOTE>(.*?)</NOTE>", re.S)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def embedded_description(path: Path) -> Optional[tuple[str, str]]:
    """(source, text) from the first of bext Description, iXML NOTE, INFO ICMT; None otherwise."""
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            header = fh.read(12)
            if len(header) < 12 or header[:4] not in (b"RIFF", b"RF64") or header[8:12] != b"WAVE":
                return None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    break
                tag, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if tag in (b"bext", b"iXML", b"LIST") and size < (1 << 24):
                    body = fh.read(size)
                    if tag == b"bext":
                        found.setdefault("bext", _text(body[:256]))
                    elif tag == b"iXML":
                        match = _NOTE.search(body.decode("utf-8", "replace"))
                        if match:
                            found.setdefault("ixml", match.group(1).strip())
                    elif body[:4] == b"INFO":
                        pos = 4
                        while pos + 8 <= len(body):
                            sub, sub_size = body[pos:pos + 4], struct.unpack("<I", body[pos + 4:pos + 8])[0]
                            if sub == b"ICMT":
                                found.setdefault("info", _text(body[pos + 8:pos + 8 + sub_size]))
                            pos += 8 + sub_size + (sub_size % 2)
                    if size % 2:
                        fh.seek(1, 1)
                else:
                    fh.seek(size + (size % 2), 1)
    except OSError:
        return None
    for source in ("bext", "ixml", "info"):
        if found.get(source):
            return source, found[source]
    return None
