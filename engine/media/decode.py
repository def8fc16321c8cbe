"""Frame-exact decoding of a time range with PyAV (MODEL.md §4, NLE.md).

For each target time T_k = start + k / fps the frame used is the first decoded frame whose
presentation time is at or after T_k (duplicates for low-fps sources). Times are exact rationals
(pts x time_base), relative to the video stream's start, so 23.976 / 29.97 / 59.94 / VFR sources
sample correctly. Decoding seeks to the key frame before the range, streams frames, and converts
only the frames that are used, so memory is bounded by the output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Sequence

import av
import numpy as np

from engine.cancel import Cancelled
from engine.media.errors import MediaError
from engine.media.timing import TimeValue, as_fraction, frame_targets


@dataclass(frozen=True)
class FrameSpec:
    """How to sample and shape frames for one encoder.
    mode 'squash': resize to size x size ignoring aspect (CLIP); 'crop': resize the short side
    to `size` keeping the display aspect, then centre-crop size x size (Synchformer)."""

    fps: Fraction
    size: int
    mode: str = "squash"

    def __post_init__(self) -> None:
        if self.mode not in ("squash", "crop"):
            raise ValueError(f"FrameSpec.mode must be 'squash' or 'crop', got {self.mode!r}")


CLIP_FRAMES = FrameSpec(fps=Fraction(8), size=384, mode="squash")
SYNC_FRAMES = FrameSpec(fps=Fraction(25), size=224, mode="crop")


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    has_video: bool
    has_audio: bool
    duration: Fraction  # seconds, from the video stream if there is one
    frame_rate: Optional[Fraction] = None  # average rate
    width: int = 0
    height: int = 0
    sample_aspect: Fraction = Fraction(1)
    start_time: Fraction = Fraction(0)  # the video stream's first presentation time
    codec: str = ""
    timecode: Optional[str] = None  # the source timecode of the first frame ("01:00:00:00")

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, non-square pixels applied (rotation not applied)."""
        return max(1, round(self.width * self.sample_aspect)), self.height


@dataclass
class DecodeStats:
    """Counters for tests and diagnostics."""

    decoded_frames: int = 0
    converted_frames: int = 0
    seeks: int = 0
    first_decoded_time: Optional[Fraction] = None


def _open(path: Path):
    if not path.exists():
        raise MediaError(path, "file not found; check the path or relink the media")
    if not path.is_file():
        raise MediaError(path, "not a file")
    try:
        return av.open(str(path))
    except av.error.InvalidDataError:
        raise MediaError(path, "not a readable media file (corrupt, truncated, or an unknown "
                               "format)") from None
    except av.error.FFmpegError as err:
        raise MediaError(path, f"cannot be opened ({err.strerror or err})") from None


def _stream_duration(container, stream) -> Fraction:
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return Fraction(stream.duration) * stream.time_base
    if container.duration is not None:
        return Fraction(container.duration, av.time_base)
    return Fraction(0)


_PROBED: dict[tuple, "MediaInfo"] = {}
_PROBED_MAX = 256


def probe(path: Path | str) -> MediaInfo:
    """Streams, duration, rate, size and pixel aspect of a media file. Remembered per (path,
    size, modification time): one request asks several times (checking the range, windowing,
    the takes' timecode), and opening a container costs ~10 ms."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None  # _open names the problem
    if key is not None and key in _PROBED:
        return _PROBED[key]
    info = _probe(path)
    if key is not None:
        if len(_PROBED) >= _PROBED_MAX:
            _PROBED.pop(next(iter(_PROBED)))
        _PROBED[key] = info
    return info


def _probe(path: Path) -> MediaInfo:
    with _open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        has_audio = bool(container.streams.audio)
        if video is None:
            return MediaInfo(path=path, has_video=False, has_audio=has_audio,
                             duration=_stream_duration(container, container.streams.audio[0]
                                                       if has_audio else None))
        ctx = video.codec_context
        if ctx is None or ctx.name in (None, "", "none"):
            tag = getattr(video, "codec_tag", "") or "unknown"
            raise MediaError(path, f"unsupported video codec ({tag}); transcode it to H.264, "
                                   f"ProRes or DNxHD first")
        sar = video.sample_aspect_ratio or ctx.sample_aspect_ratio
        start = Fraction(video.start_time or 0) * video.time_base if video.time_base else Fraction(0)
        rate = video.average_rate or video.guessed_rate or video.base_rate
        return MediaInfo(path=path, has_video=True, has_audio=has_audio,
                         duration=_stream_duration(container, video),
                         frame_rate=Fraction(rate) if rate else None, width=ctx.width,
                         height=ctx.height, sample_aspect=Fraction(sar) if sar else Fraction(1),
                         start_time=start, codec=ctx.name, timecode=_source_timecode(container))


_TIMECODE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")


def _source_timecode(container) -> Optional[str]:
    """The timecode track's start (QuickTime tmcd / MXF / MP4 as FFmpeg exposes it): on the
    video stream, a data stream or the container."""
    candidates = [stream.metadata for stream in container.streams] + [container.metadata]
    for metadata in candidates:
        value = (metadata or {}).get("timecode")
        if value and _TIMECODE.match(value.strip()):
            return value.strip()
    return None


def _render(frame, spec: FrameSpec, info: MediaInfo) -> np.ndarray:
    """One frame as (size, size, 3) uint8 RGB, display orientation."""
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    if spec.mode == "squash":
        img = frame.to_ndarray(format="rgb24", width=spec.size, height=spec.size,
                               interpolation="BICUBIC")
        return np.ascontiguousarray(np.rot90(img, k=quarter_turns))
    width, height = info.display_size
    if quarter_turns % 2:
        width, height = height, width  # displayed sideways: the short side is the other axis
    scale = spec.size / min(width, height)
    out_w, out_h = max(spec.size, round(width * scale)), max(spec.size, round(height * scale))
    if quarter_turns % 2:
        out_w, out_h = out_h, out_w  # resize in coded orientation, rotate after
    img = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="BICUBIC")
    img = np.rot90(img, k=quarter_turns)
    top = (img.shape[0] - spec.size) // 2
    left = (img.shape[1] - spec.size) // 2
    return np.ascontiguousarray(img[top:top + spec.size, left:left + spec.size])


def _check_range(info: MediaInfo, start: Fraction, duration: Fraction) -> None:
    if duration <= 0:
        raise MediaError(info.path, f"empty or reversed range (duration {float(duration):g} s); "
                                    f"the out point must come after the in point")
    if start < 0:
        raise MediaError(info.path, f"range starts before the media ({float(start):g} s)")
    end = start + duration
    if info.duration and end > info.duration + Fraction(1, 1000):
        raise MediaError(info.path, f"range ends at {float(end):.3f} s, past the end of the media "
                                    f"({float(info.duration):.3f} s); shorten the range")


def decode_frames(path: Path | str, start: TimeValue, duration: TimeValue,
                  specs: Sequence[FrameSpec] = (CLIP_FRAMES, SYNC_FRAMES), *,
                  stats: Optional[DecodeStats] = None,
                  cancel: Optional[Callable[[], bool]] = None) -> list[np.ndarray]:
    """Frames for each spec over [start, start + duration): arrays (N, size, size, 3) uint8 with
    N = floor(duration * fps). One decoding pass serves every spec."""
    path = Path(path)
    start, duration = as_fraction(start), as_fraction(duration)
    info = probe(path)
    if not info.has_video:
        raise MediaError(path, "has no video stream; video conditioning needs picture (use "
                               "text-only generation for audio files)")
    _check_range(info, start, duration)
    stats = stats if stats is not None else DecodeStats()
    targets = [frame_targets(start, duration, spec.fps) for spec in specs]
    outputs = [np.empty((len(t), spec.size, spec.size, 3), np.uint8) for t, spec in zip(targets, specs)]
    filled = [0] * len(specs)

    def assign(frame, frame_time: Optional[Fraction]) -> None:
        rendered: dict[int, np.ndarray] = {}
        for i, spec in enumerate(specs):
            while filled[i] < len(targets[i]) and (frame_time is None
                                                   or targets[i][filled[i]] <= frame_time):
                if i not in rendered:
                    rendered[i] = _render(frame, spec, info)
                    stats.converted_frames += 1
                outputs[i][filled[i]] = rendered[i]
                filled[i] += 1

    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        stream_start = Fraction(stream.start_time or 0) * time_base
        if start > 0:
            container.seek(int((stream_start + start) / time_base), stream=stream, backward=True)
            stats.seeks += 1
        last_frame, last_time = None, None
        try:
            for frame in container.decode(stream):
                stats.decoded_frames += 1
                if frame.pts is None:
                    continue  # no timestamp: cannot be placed exactly
                frame_time = Fraction(frame.pts) * time_base - stream_start
                if stats.first_decoded_time is None:
                    stats.first_decoded_time = frame_time
                assign(frame, frame_time)
                last_frame, last_time = frame, frame_time
                if all(f == len(t) for f, t in zip(filled, targets)):
                    break
                if cancel is not None and cancel():  # every frame: a 4K frame alone takes ~30 ms
                    raise Cancelled(f"decoding {path} cancelled")
        except av.error.FFmpegError as err:
            raise MediaError(path, f"decoding failed ({err.strerror or err}); the file may be "
                                   f"corrupt or truncated") from None
    if any(f < len(t) for f, t in zip(filled, targets)):
        if last_frame is None:
            raise MediaError(path, "no decodable video frames in the range; the file may be "
                                   "corrupt or truncated")
        pending = min(t[f] for f, t in zip(filled, targets) if f < len(t))
        frame_period = 1 / info.frame_rate if info.frame_rate else Fraction(1, 10)
        if pending > last_time + 2 * frame_period:
            raise MediaError(path, f"frames stop at {float(last_time):.3f} s, before the range "
                                   f"needs them ({float(pending):.3f} s); the file may be truncated")
        # targets after the last frame but within its display time show the last frame
        assign(last_frame, None)
    return outputs
