"""Sound-library ingestion: scanning, captions (read-only; the library is never modified)."""
from trainer.data.captions import Caption, CaptionFinder, ucs_caption
from trainer.data.scan import LibraryItem, ScanReport, SkippedFile, scan_library

__all__ = ["Caption", "CaptionFinder", "LibraryItem", "ScanReport", "SkippedFile",
           "scan_library", "ucs_caption"]
from trainer.data.windows import Window, decode_audio, iter_windows

__all__ += ["Window", "decode_audio", "iter_windows"]
