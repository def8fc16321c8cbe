"""Preview movie: the picture of a range with the generated audio, duration exact.

The original video stream is copied without re-encoding where that is exact: the whole stream, or
any range of an intra-only stream (ProRes, DNxHD, MJPEG: every packet a key frame). Otherwise the
range is re-encoded with H.264, starting exactly at the range. Audio is 24-bit PCM in a QuickTime
container, so there is no encoder delay and its length is exactly the range's.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.atomic import atomic_target
from engine.media.decode import probe
from engine.media.errors import MediaError
from engine.media.timing import TimeValue, as_fraction


def _packets_in_range(container, stream, start: Fraction, end: Fraction) -> list:
    stream_start = Fraction(stream.start_time or 0) * stream.time_base
    if start > 0:  # don't read the packets before the range (a key frame at or before it)
        container.seek(int((stream_start + start) / stream.time_base), stream=stream,
                       backward=True)
    out = []
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        t = Fraction(packet.pts) * stream.time_base - stream_start
        if start <= t < end:
            out.append(packet)
    return out


def _mux_video(src: Path, out, start: Fraction, end: Fraction, whole: bool, rate: Fraction,
               add_audio) -> None:
    """Stream-copy when exact, otherwise re-encode the range with H.264. `add_audio` adds the
    audio stream (every stream must exist before the first packet is written)."""
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        packets = _packets_in_range(inp, vin, start, end)
        copy = bool(packets) and (whole or all(p.is_keyframe for p in packets))
        if copy:
            vout = out.add_stream_from_template(vin)
            vout.time_base = vin.time_base
        else:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = "yuv420p"
            vout.options = {"crf": "18", "preset": "veryfast"}
        add_audio()
        if copy:
            offset = min(p.pts for p in packets)
            for packet in packets:
                packet.pts -= offset
                packet.dts = packet.pts if packet.dts is None else packet.dts - offset
                packet.stream = vout
                out.mux(packet)
            return
        stream_start = Fraction(vin.start_time or 0) * vin.time_base
        inp.seek(int((stream_start + start) / vin.time_base), stream=vin, backward=True)
        count = 0
        for frame in inp.decode(vin):
            t = Fraction(frame.pts) * vin.time_base - stream_start
            if t < start:
                continue
            if t >= end:
                break
            new = frame.reformat(format="yuv420p")
            new.pts, new.time_base = count, 1 / rate
            count += 1
            for packet in vout.encode(new):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)


def mux_preview(video: Path | str, start: TimeValue, duration: TimeValue, audio: np.ndarray,
                out_path: Path | str, *, sample_rate: int = 48000) -> Path:
    """Write `out_path` (.mov) atomically; never overwrites. audio: (channels, n) float."""
    video, out_path = Path(video), Path(out_path)
    start, duration = as_fraction(start), as_fraction(duration)
    info = probe(video)
    if not info.has_video:
        raise MediaError(video, "has no video stream to preview")
    if duration <= 0 or start < 0 or start + duration > info.duration + Fraction(1, 1000):
        raise MediaError(video, f"range {float(start):.3f}+{float(duration):.3f} s is outside the "
                                f"media ({float(info.duration):.3f} s)")
    end = start + duration
    samples = np.asarray(audio, dtype=np.float32)
    n = round(duration * sample_rate)
    samples = np.pad(samples[:, :n], ((0, 0), (0, max(0, n - samples.shape[1]))))
    whole = start == 0 and end >= info.duration
    with atomic_target(out_path, suffix=".mov") as tmp, av.open(str(tmp), "w", format="mov") as out:
        streams = {}

        def add_audio():
            streams["audio"] = out.add_stream("pcm_s24le", rate=sample_rate,
                                              layout="mono" if samples.shape[0] == 1
                                              else "stereo")

        _mux_video(video, out, start, end, whole, info.frame_rate or Fraction(25), add_audio)
        astream = streams["audio"]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.T.reshape(1, -1)),
                                           format="flt", layout=astream.layout.name)
        frame.sample_rate = sample_rate
        for packet in astream.encode(frame):
            out.mux(packet)
        for packet in astream.encode():
            out.mux(packet)
    return out_path
