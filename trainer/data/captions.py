"""Captions for library files; the first source found wins (issue: manifest, sidecar, embedded
description, UCS file name, file name in words)."""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from trainer.data.riff import embedded_description

MANIFEST_NAMES = ("captions.csv", "captions.tsv", "captions.json", "manifest.csv", "manifest.tsv",
                  "manifest.json", "metadata.csv", "metadata.tsv", "metadata.json")

# Universal Category System category codes we expand to words (others are lower-cased as they are)
UCS_CATEGORIES = {
    "AIR": "air", "ALRM": "alarm", "AMB": "ambience", "ANML": "animal", "BELL": "bell",
    "BIRD": "bird", "BOAT": "boat", "BUBL": "bubbles", "CERM": "ceramics", "CHAIN": "chain",
    "CLOTH": "cloth", "CLOK": "clock", "COMP": "computer", "CRWD": "crowd", "DOOR": "door",
    "DRWR": "drawer", "ELEC": "electricity", "EXPL": "explosion", "FIRE": "fire",
    "FOLY": "foley", "FOOD": "food", "FURN": "furniture", "FTSP": "footsteps", "GLAS": "glass",
    "GUNS": "gun", "HORN": "horn", "HUMN": "human", "ICE": "ice", "IMPT": "impact",
    "LIQD": "liquid", "MACH": "machine", "MAGC": "magic", "MECH": "mechanical", "METL": "metal",
    "MOVE": "movement", "OBJ": "object", "PAPR": "paper", "PLAS": "plastic", "RAIN": "rain",
    "ROCK": "rock", "ROPE": "rope", "SWSH": "swish", "TOOL": "tool", "TOY": "toy",
    "VEH": "vehicle", "WATR": "water", "WEAP": "weapon", "WHSH": "whoosh", "WIND": "wind",
    "WOOD": "wood", "WTHR": "weather",
}
# Common UCS subcategory abbreviations (the rest are spelled out in the CatID already, e.g.
# "DOORWood", or kept as they are)
UCS_SUBCATEGORIES = {
    "Impt": "impact", "Mvmt": "movement", "Hndl": "handle", "Crsh": "crash", "Scrp": "scrape",
    "Rttl": "rattle", "Misc": "miscellaneous", "Brk": "break", "Brks": "brakes", "Drp": "drop",
    "Elec": "electric", "Frct": "friction", "Hdwr": "hardware", "Hit": "hit", "Knck": "knock",
    "Lrg": "large", "Mech": "mechanical", "Rstl": "rustle", "Sml": "small", "Splsh": "splash",
    "Squk": "squeak", "Strn": "strain", "Tnsn": "tension", "Whsh": "whoosh", "Wsh": "wash",
    "Swsh": "swish", "Dbrs": "debris", "Tonl": "tonal", "Rsnc": "resonance", "Rng": "ring",
}
_CAT_ID = re.compile(r"^([A-Z]{2,6})([A-Z][a-z][A-Za-z]*)?$")


@dataclass(frozen=True)
class Caption:
    text: str
    source: str  # manifest, sidecar, bext, ixml, info, ucs, filename
    start: Optional[float] = None
    end: Optional[float] = None


def _words(text: str) -> str:
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)  # camelCase -> camel Case
    text = re.sub(r"[_\-.]+|\s+", " ", text)
    text = re.sub(r"\b\d+\b", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def ucs_caption(stem: str) -> Optional[str]:
    """CatID_FXName_CreatorID_SourceID[_UserData] -> 'category subcategory fx name words'."""
    parts = stem.split("_")
    if len(parts) < 4:
        return None
    match = _CAT_ID.match(parts[0])
    if not match:
        return None
    category = UCS_CATEGORIES.get(match.group(1), match.group(1).lower())
    sub = match.group(2) or ""
    subcategory = UCS_SUBCATEGORIES.get(sub) or (_words(sub) if sub else "")
    fx_name = _words(parts[1])
    words = " ".join(w for w in (category, subcategory, fx_name) if w)
    return words or None


# Column names for the file and its caption, as library tools export them (Soundminer, BaseHead
# and spreadsheets write "Filename" and "Description"), matched without case.
PATH_COLUMNS = ("path", "filename", "file name", "file", "filepath", "file path", "name")
CAPTION_COLUMNS = ("caption", "description", "desc", "text")


def _column(row: dict, names: tuple[str, ...]) -> str:
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    for name in names:
        value = lowered.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _load_manifest(path: Path) -> dict[str, Caption]:
    """Captions keyed by the file's resolved path, and by `name:<file name>` for manifests that
    name files without their folder (Soundminer's metadata.csv)."""
    entries: dict[str, Caption] = {}
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        rows = data if isinstance(data, list) else [{"path": k, **(v if isinstance(v, dict) else {"caption": v})}
                                                     for k, v in data.items()]
    else:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark; European spreadsheets
        # separate with ";"
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
        header = text.split("\n", 1)[0]
        delimiter = "\t" if path.suffix == ".tsv" else max((",", ";", "\t"), key=header.count)
        rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    for row in rows:
        rel, text = _column(row, PATH_COLUMNS), _column(row, CAPTION_COLUMNS)
        if not rel or not text:
            continue
        start = float(row["start"]) if row.get("start") not in (None, "") else None
        end = float(row["end"]) if row.get("end") not in (None, "") else None
        caption = Caption(text, "manifest", start, end)
        entries[str((path.parent / rel).resolve())] = caption
        if "/" not in rel and "\\" not in rel:
            entries.setdefault(f"name:{rel.lower()}", caption)
    return entries


class CaptionFinder:
    """Looks up captions for files under one library root (manifests are read once)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest: dict[str, Caption] = {}
        self.manifest_errors: list[str] = []
        for manifest in sorted(p for name in MANIFEST_NAMES for p in self.root.rglob(name)):
            try:
                for key, caption in _load_manifest(manifest).items():
                    self.manifest.setdefault(key, caption)
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
                self.manifest_errors.append(f"{manifest}: unreadable manifest ({err})")

    def find(self, path: Path) -> Caption:
        hit = self.manifest.get(str(path.resolve())) or self.manifest.get(f"name:{path.name.lower()}")
        if hit is not None:
            return hit
        sidecar = path.with_suffix(".txt")
        if sidecar.is_file():
            text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                return Caption(text, "sidecar")
        if path.suffix.lower() in (".wav", ".bwf"):
            embedded = embedded_description(path)
            if embedded is not None:
                return Caption(embedded[1], embedded[0])
        ucs = ucs_caption(path.stem)
        if ucs is not None:
            return Caption(ucs, "ucs")
        return Caption(_words(path.stem) or path.stem, "filename")
