"""Scanning a sound library (read-only): usable files, durations, captions, skipped files."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import av

from trainer.data.captions import Caption, CaptionFinder

AUDIO_EXTENSIONS = {".wav", ".bwf", ".flac", ".aif", ".aiff", ".mp3", ".ogg"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv"}
MIN_SECONDS = 0.1
CAPTIONS_SHOWN = 40  # in the text report; --json lists every file
CAPTION_SOURCES = ("manifest", "sidecar", "bext", "ixml", "info", "ucs", "filename")


@dataclass(frozen=True)
class LibraryItem:
    path: Path
    kind: str  # "audio" (trains the text branch with empty video) or "video" (both)
    duration: float
    sample_rate: int
    channels: int
    caption: Caption

    def windows(self, window_seconds: float) -> int:
        """Training windows: whole windows of a long file, or one padded window."""
        start = self.caption.start or 0.0
        end = self.caption.end if self.caption.end is not None else self.duration
        return max(1, int((end - start) // window_seconds))


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass
class ScanReport:
    root: Path
    window_seconds: float
    items: list[LibraryItem] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.items)

    def summary(self) -> dict:
        kinds = Counter(item.kind for item in self.items)
        seconds = sum(item.duration for item in self.items)
        windows = sum(item.windows(self.window_seconds) for item in self.items)
        padded = sum(1 for item in self.items if item.duration < self.window_seconds)
        return {
            "root": str(self.root), "usable_files": len(self.items),
            "audio_files": kinds.get("audio", 0), "video_files": kinds.get("video", 0),
            "skipped_files": len(self.skipped), "seconds": round(seconds, 3),
            "hours": round(seconds / 3600, 4), "window_seconds": self.window_seconds,
            "windows": windows, "padded_windows": padded,
            "sample_rates": dict(sorted(Counter(i.sample_rate for i in self.items).items())),
            "caption_sources": {s: n for s in CAPTION_SOURCES
                                if (n := sum(i.caption.source == s for i in self.items))},
            "skipped": [{"path": str(s.path.relative_to(self.root)), "reason": s.reason}
                        for s in self.skipped],
            "notes": self.notes,
            "captions": [{"path": str(i.path.relative_to(self.root)), "caption": i.caption.text,
                          "source": i.caption.source} for i in self.items],
        }

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=2)

    def to_text(self) -> str:
        s = self.summary()
        lines = [f"Library: {s['root']}",
                 f"Files: {s['usable_files']} usable ({s['audio_files']} audio, "
                 f"{s['video_files']} video), {s['skipped_files']} skipped",
                 f"Duration: {s['hours']:.4f} h ({s['seconds']:.1f} s); {s['window_seconds']:g} s "
                 f"windows: {s['windows']} ({s['padded_windows']} padded)",
                 "Sample rates: " + (", ".join(f"{r} Hz ({n})" for r, n in s["sample_rates"].items())
                                     or "none") + " (resampled to the codec rate, mono)",
                 "Captions: " + (", ".join(f"{k} {v}" for k, v in s["caption_sources"].items())
                                 or "none")]
        shown = s["captions"][:CAPTIONS_SHOWN]
        if shown:
            lines.append("Caption per file (the one training will use):")
            lines += [f"  {c['path']}: \"{c['caption']}\" ({c['source']})" for c in shown]
            if len(s["captions"]) > len(shown):
                lines.append(f"  ... and {len(s['captions']) - len(shown)} more (--json lists all)")
        if s["skipped"]:
            lines.append("Skipped:")
            lines += [f"  {x['path']}: {x['reason']}" for x in s["skipped"]]
        lines += [f"Note: {note}" for note in s["notes"]]
        if not self.usable:
            lines.append("No usable audio: training cannot proceed. Add WAV/FLAC/AIFF/MP3/OGG files "
                         "or videos with sound.")
        return "\n".join(lines)


def _probe_audio(path: Path) -> tuple[float, int, int]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None or not stream.codec_context.name:
            raise ValueError("unsupported audio codec")
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            raise ValueError("unknown duration")
        return duration, stream.codec_context.sample_rate, stream.codec_context.channels


def scan_library(root: Path | str, *, window_seconds: float = 8.0,
                 progress: Optional[Callable[[int, int], None]] = None) -> ScanReport:
    """Scan `root` recursively. Nothing under it is ever written."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; point `mfmjt train scan` at a library folder")
    report = ScanReport(root=root, window_seconds=window_seconds)
    finder = CaptionFinder(root)
    report.notes += finder.manifest_errors
    candidates = sorted(p for p in root.rglob("*") if p.is_file()
                        and p.suffix.lower() in AUDIO_EXTENSIONS | VIDEO_EXTENSIONS)
    for i, path in enumerate(candidates):
        if progress is not None:
            progress(i + 1, len(candidates))
        kind = "video" if path.suffix.lower() in VIDEO_EXTENSIONS else "audio"
        try:
            duration, rate, channels = _probe_audio(path)
        except av.error.FFmpegError:
            report.skipped.append(SkippedFile(path, "not a readable media file (corrupt or "
                                                    "truncated)"))
            continue
        except ValueError as err:
            report.skipped.append(SkippedFile(path, str(err)))
            continue
        if duration < MIN_SECONDS:
            report.skipped.append(SkippedFile(path, f"too short ({duration:.3f} s)"))
            continue
        report.items.append(LibraryItem(path=path, kind=kind, duration=duration,
                                        sample_rate=rate, channels=channels,
                                        caption=finder.find(path)))
    return report


__all__ = ["LibraryItem", "ScanReport", "SkippedFile", "scan_library"]
