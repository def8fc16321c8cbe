"""Media I/O: frame-exact decoding, Broadcast WAV writing, preview movies."""
from engine.media.decode import (CLIP_FRAMES, SYNC_FRAMES, DecodeStats, FrameSpec, MediaInfo,
                                 decode_frames, probe)
from engine.media.errors import MediaError

__all__ = ["CLIP_FRAMES", "SYNC_FRAMES", "DecodeStats", "FrameSpec", "MediaError", "MediaInfo",
           "decode_frames", "probe"]
