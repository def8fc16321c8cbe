"""File names, versions, handles and the `"mfmjt"` provenance of takes: pure Python (issue 15).

The CLI, the service, the panel and the host add-ons (whose Python has no torch, numpy or OTIO)
all name and describe takes through this module, so their outputs are identical. Standard
library only; `tests/test_naming.py` imports it in a fresh interpreter to keep it so.

Names (NLE.md): nothing is ever overwritten; each delivery takes the next version number.
- a generation:  `<stem>_take<k>_v<NNN>.wav` and `<stem>_preview_v<NNN>.mov`, one NNN for all;
- a timeline's:  `<timeline>_<clip>_FOLEY_<prompt>_v<NNN>_t<kk>.wav`.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Optional

HANDLE_SECONDS = Fraction(1)  # NLE.md: at least 1 s of handle in each file
METADATA_KEY = "mfmjt"
_VERSION = re.compile(r"_v(\d{3,})$")
MEDIA_SUFFIX = re.compile(r"\.(mov|mp4|m4v|mxf|avi|mkv|mts|r3d|braw|wav|aif|aiff)$", re.I)


def next_version(directory: Path | str, stem: str, suffix: str = ".wav") -> int:
    """One past the highest NNN of the existing `<stem>_vNNN<suffix>` (never reused)."""
    highest = 0
    for existing in Path(directory).glob(f"{glob_escape(stem)}_v*{glob_escape(suffix)}"):
        match = _VERSION.search(existing.name[: -len(suffix)] if suffix else existing.name)
        if match and existing.name.startswith(stem + "_v"):
            highest = max(highest, int(match.group(1)))
    return highest + 1


def glob_escape(text: str) -> str:
    """A literal in a glob pattern: a clip named `[B] cam` must not be a character class."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def next_version_path(directory: Path | str, stem: str, suffix: str = ".wav") -> Path:
    """`<stem>_vNNN<suffix>` with NNN one past the highest existing version (never reused)."""
    return Path(directory) / f"{stem}_v{next_version(directory, stem, suffix):03d}{suffix}"


def slug(text: str, limit: int = 24) -> str:
    """Letters and digits joined by '-', at most `limit` long; 'foley' when nothing is left."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit] or "foley"


# ---------------------------------------------------------------- a generation's takes
def generation_stem(media: Optional[Path | str], prompt: str = "") -> str:
    """`<movie>_foley`; a text-to-audio request without media is named by its prompt."""
    return f"{Path(media).stem}_foley" if media is not None else f"{slug(prompt)}_foley"


def take_path(folder: Path | str, stem: str, take: int, version: int) -> Path:
    return Path(folder) / f"{stem}_take{take}_v{version:03d}.wav"


def preview_path(folder: Path | str, stem: str, version: int) -> Path:
    return Path(folder) / f"{stem}_preview_v{version:03d}.mov"


def next_generation_version(folder: Path | str, stem: str, takes: int) -> int:
    """One past the highest version of any take or preview of `stem`: a take and its preview
    always share their number."""
    return max([next_version(folder, f"{stem}_take{k}") for k in range(1, max(takes, 1) + 1)]
               + [next_version(folder, f"{stem}_preview", ".mov")])


# ---------------------------------------------------------------- a timeline's takes
def timeline_take_stem(timeline_name: str, clip_name: str, prompt: str) -> str:
    return f"{slug(timeline_name)}_{slug(MEDIA_SUFFIX.sub('', clip_name))}_FOLEY_{slug(prompt)}"


def timeline_take_paths(folder: Path | str, stem: str, takes: int,
                        version: Optional[int] = None) -> tuple[int, list[Path]]:
    """(version, paths) of a segment's takes: `<stem>_vNNN_tKK.wav`, the next free NNN."""
    version = next_version(folder, stem, "_t01.wav") if version is None else version
    return version, [Path(folder) / f"{stem}_v{version:03d}_t{k:02d}.wav"
                     for k in range(1, takes + 1)]


def handles(body_start: Fraction, body_duration: Fraction, media_duration: Fraction,
            record_offset: Fraction, frame_rate: Fraction,
            handle: Fraction = HANDLE_SECONDS) -> tuple[int, Fraction, Fraction]:
    """(head frames, head seconds, tail seconds) of handle around a body of media.

    Whole frames of head, in exact arithmetic: 30 frames at 59.94 are 0.5005 s, and
    int(0.5005 * 59.94...) in floats is 29. The head stops at the media's first frame and at the
    timeline's start (a clip at 00:00:00:00 gets none: nothing can precede it, and a BWF time
    reference cannot go before midnight); the tail stops at the media's end."""
    head_frames = math.floor(min(handle, body_start, record_offset) * frame_rate)
    head = Fraction(head_frames) / frame_rate
    tail = min(handle, max(Fraction(0), media_duration - body_start - body_duration))
    return head_frames, head, tail


# ---------------------------------------------------------------- provenance
# the keys the engine itself writes into a delivery's provenance (`provenance`); a client's own
# (`extra_provenance`) must use other names, or the record would lie about how a take was made
ENGINE_PROVENANCE_KEYS = ("bundle", "network_sha256", "codec_version", "codec_partial_contrast",
                          "guidance", "mode", "steps", "seed", "prompt", "negative_prompt")


def clashing_provenance_keys(extra: dict) -> list[str]:
    """The keys of a client's extra provenance that are the engine's own."""
    return [key for key in extra if key in ENGINE_PROVENANCE_KEYS]


def provenance(*, bundle: str, network_sha256: str, codec_version: Optional[int], settings: dict,
               seed: int, prompt: str, negative_prompt: str,
               codec_partial_contrast: Optional[float] = None, **extra) -> dict:
    """The `"mfmjt"` metadata of a delivery, one key set for every front end: written into each
    WAV's BWF note, the timeline clips' metadata and the JSON reports. The codec's postfilter
    strength is in it because it changes the sound of the same network, codec and seed."""
    if clashing := clashing_provenance_keys(extra):
        raise ValueError(f"extra provenance keys {clashing} are the engine's own")
    return {"bundle": bundle, "network_sha256": network_sha256, "codec_version": codec_version,
            "codec_partial_contrast": codec_partial_contrast,
            **settings, "seed": seed, "prompt": prompt, "negative_prompt": negative_prompt,
            **extra}


__all__ = ["ENGINE_PROVENANCE_KEYS", "HANDLE_SECONDS", "METADATA_KEY", "clashing_provenance_keys",
           "generation_stem", "glob_escape", "handles",
           "next_generation_version", "next_version", "next_version_path", "preview_path",
           "provenance", "slug", "take_path", "timeline_take_paths", "timeline_take_stem"]
