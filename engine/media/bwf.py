"""Broadcast WAV (EBU Tech 3285) writing and reading: what sound editors expect (NLE.md).

48 kHz, 16/24-bit PCM or 32-bit float, mono or stereo; a `bext` chunk (Description with
provenance, Originator, date/time, TimeReference = first sample's time in samples since midnight)
and an iXML chunk with the timecode rate; length padded to whole timeline frames; optional
loudness normalisation (pyloudnorm); atomic writes that never overwrite.
"""
from __future__ import annotations

import datetime as _dt
import io
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape

import numpy as np

from engine.atomic import atomic_write_bytes

OUTPUT_RATE = 48000
BIT_DEPTHS = (16, 24, 32)  # 32 = IEEE float
BEXT_FIXED_SIZE = 602


@dataclass(frozen=True)
class BroadcastInfo:
    description: str = ""
    originator: str = "MF-MJT Foley"
    originator_reference: str = ""
    origination: _dt.datetime = field(default_factory=lambda: _dt.datetime.now().replace(microsecond=0))
    record_start: Fraction = Fraction(0)  # seconds since midnight of the body's first sample
    timecode_rate: Fraction = Fraction(24)
    drop_frame: bool = False
    project: str = ""
    note: str = ""
    coding_history: str = ""


@dataclass(frozen=True)
class LoudnessTarget:
    """EBU R128 integrated loudness target (LUFS) and a sample-peak ceiling (dBFS)."""

    integrated_lufs: float = -23.0
    peak_ceiling_dbfs: float = -1.0


@dataclass
class BwfFile:
    samples: np.ndarray  # (channels, n) float32 in [-1, 1]
    sample_rate: int
    bit_depth: int
    is_float: bool
    bext: dict
    ixml: str
    chunk_order: list[str]


def samples_per_frame(rate: Fraction, sample_rate: int = OUTPUT_RATE) -> Fraction:
    return Fraction(sample_rate) / rate


def frame_exact_length(n_samples: int, rate: Fraction, sample_rate: int = OUTPUT_RATE) -> int:
    """Smallest length >= n_samples covering a whole number of timeline frames (rounded up to a
    sample where a frame is not a whole number of samples, e.g. 1601.6 at 29.97)."""
    per_frame = samples_per_frame(rate, sample_rate)
    frames = -(-Fraction(n_samples) // per_frame)  # ceil
    return int(-(-(frames * per_frame) // 1))


def _fixed(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size].ljust(size, b"\0")


def _bext_chunk(info: BroadcastInfo, time_reference: int, loudness: Optional[tuple]) -> bytes:
    body = io.BytesIO()
    body.write(_fixed(info.description, 256))
    body.write(_fixed(info.originator, 32))
    body.write(_fixed(info.originator_reference, 32))
    body.write(_fixed(info.origination.strftime("%Y-%m-%d"), 10))
    body.write(_fixed(info.origination.strftime("%H:%M:%S"), 8))
    body.write(struct.pack("<II", time_reference & 0xFFFFFFFF, time_reference >> 32))
    body.write(struct.pack("<H", 2))  # version 2: loudness fields valid
    body.write(b"\0" * 64)  # UMID
    values = loudness or (0x7FFF,) * 5
    body.write(struct.pack("<5h", *values))
    body.write(b"\0" * 180)
    body.write(info.coding_history.encode("ascii", "replace"))
    return body.getvalue()


def _ixml_chunk(info: BroadcastInfo, time_reference: int, bit_depth: int, channels: int,
                sample_rate: int) -> bytes:
    rate = info.timecode_rate
    flag = "DF" if info.drop_frame else "NDF"
    tracks = "".join(f"<TRACK><CHANNEL_INDEX>{i + 1}</CHANNEL_INDEX><INTERLEAVE_INDEX>{i + 1}"
                     f"</INTERLEAVE_INDEX><NAME>FOLEY{'' if channels == 1 else ' ' + 'LR'[i]}"
                     f"</NAME></TRACK>" for i in range(channels))
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><BWFXML><IXML_VERSION>1.61</IXML_VERSION>'
           f"<PROJECT>{escape(info.project)}</PROJECT><NOTE>{escape(info.note)}</NOTE>"
           f"<SPEED><NOTE>timeline rate</NOTE><MASTER_SPEED>{rate.numerator}/{rate.denominator}"
           f"</MASTER_SPEED><CURRENT_SPEED>{rate.numerator}/{rate.denominator}</CURRENT_SPEED>"
           f"<TIMECODE_RATE>{rate.numerator}/{rate.denominator}</TIMECODE_RATE>"
           f"<TIMECODE_FLAG>{flag}</TIMECODE_FLAG><FILE_SAMPLE_RATE>{sample_rate}"
           f"</FILE_SAMPLE_RATE><AUDIO_BIT_DEPTH>{bit_depth}</AUDIO_BIT_DEPTH>"
           f"<TIMESTAMP_SAMPLE_RATE>{sample_rate}</TIMESTAMP_SAMPLE_RATE>"
           f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>{time_reference >> 32}"
           f"</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI><TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>"
           f"{time_reference & 0xFFFFFFFF}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO></SPEED>"
           f"<TRACK_LIST><TRACK_COUNT>{channels}</TRACK_COUNT>{tracks}</TRACK_LIST></BWFXML>")
    return xml.encode("utf-8")


def _chunk(tag: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return tag + struct.pack("<I", len(body)) + body + pad


def _pcm_bytes(samples: np.ndarray, bit_depth: int) -> bytes:
    interleaved = np.ascontiguousarray(samples.T)  # (n, channels)
    if bit_depth == 32:
        return interleaved.astype("<f4").tobytes()
    clipped = np.clip(interleaved, -1.0, 1.0)
    if bit_depth == 16:
        return np.round(clipped * 32767).astype("<i2").tobytes()
    ints = np.round(clipped * 8388607).astype("<i4")
    return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def _apply_loudness(samples: np.ndarray, target: LoudnessTarget, sample_rate: int):
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    measured = meter.integrated_loudness(samples.T.astype(np.float64))
    if not np.isfinite(measured):
        return samples, None  # silence: nothing to normalise
    gain_db = target.integrated_lufs - measured
    out = samples * (10 ** (gain_db / 20))
    ceiling = 10 ** (target.peak_ceiling_dbfs / 20)
    peak = float(np.abs(out).max())
    if peak > ceiling:
        out = out * (ceiling / peak)
    final = meter.integrated_loudness(out.T.astype(np.float64))
    peak_db = 20 * np.log10(max(float(np.abs(out).max()), 1e-12))
    # bext v2 loudness fields are value x 100: LoudnessValue, range, true peak, momentary, short
    return out, (round(final * 100), 0x7FFF, round(peak_db * 100), 0x7FFF, 0x7FFF)


def encode_bwf(samples: np.ndarray, *, sample_rate: int = OUTPUT_RATE, bit_depth: int = 24,
               info: BroadcastInfo = BroadcastInfo(), frame_rate: Optional[Fraction] = None,
               head_handle: Fraction = Fraction(0),
               loudness: Optional[LoudnessTarget] = None) -> bytes:
    """Bytes of a Broadcast WAV. samples: (channels, n) float at `sample_rate` (already 48 kHz).
    The audio includes `head_handle` seconds before the body, so TimeReference = record_start -
    head_handle. With `frame_rate`, the length is padded with silence to whole frames."""
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit depth must be one of {BIT_DEPTHS}, got {bit_depth}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] not in (1, 2):
        raise ValueError(f"samples must be (1 or 2 channels, n), got {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinite values")
    loudness_fields = None
    if loudness is not None:
        samples, loudness_fields = _apply_loudness(samples, loudness, sample_rate)
    if frame_rate is not None:
        length = frame_exact_length(samples.shape[1], Fraction(frame_rate), sample_rate)
        samples = np.pad(samples, ((0, 0), (0, length - samples.shape[1])))
    first_sample_time = Fraction(info.record_start) - Fraction(head_handle)
    if first_sample_time < 0:
        raise ValueError(f"record start {float(info.record_start):.3f} s minus the head handle "
                         f"{float(head_handle):.3f} s is before midnight")
    time_reference = round(first_sample_time * sample_rate)
    channels, n = samples.shape
    is_float = bit_depth == 32
    block_align = channels * bit_depth // 8
    fmt = struct.pack("<HHIIHH", 3 if is_float else 1, channels, sample_rate,
                      sample_rate * block_align, block_align, bit_depth)
    chunks = [_chunk(b"fmt ", fmt)]
    if is_float:
        chunks.append(_chunk(b"fact", struct.pack("<I", n)))
    chunks.append(_chunk(b"bext", _bext_chunk(info, time_reference, loudness_fields)))
    chunks.append(_chunk(b"iXML", _ixml_chunk(info, time_reference, bit_depth, channels,
                                              sample_rate)))
    chunks.append(_chunk(b"data", _pcm_bytes(samples, bit_depth)))
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_bwf(path: Path | str, samples: np.ndarray, **kwargs) -> Path:
    """Encode and write atomically; an existing file is never replaced."""
    return atomic_write_bytes(path, encode_bwf(samples, **kwargs))


def _parse_bext(body: bytes) -> dict:
    def text(a, b):
        return body[a:b].split(b"\0", 1)[0].decode("ascii", "replace")
    low, high = struct.unpack_from("<II", body, 338)
    loud = struct.unpack_from("<5h", body, 412)
    return {"description": text(0, 256), "originator": text(256, 288),
            "originator_reference": text(288, 320), "origination_date": text(320, 330),
            "origination_time": text(330, 338), "time_reference": low | (high << 32),
            "version": struct.unpack_from("<H", body, 346)[0],
            "loudness_value": None if loud[0] == 0x7FFF else loud[0] / 100,
            "max_true_peak": None if loud[2] == 0x7FFF else loud[2] / 100,
            "coding_history": body[BEXT_FIXED_SIZE:].split(b"\0", 1)[0].decode("ascii", "replace")}


def read_bwf(path: Path | str) -> BwfFile:
    """Read our own Broadcast WAVs (and plain PCM / float WAVs) back, with bext and iXML."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, chunks, order = 12, {}, []
    while pos + 8 <= len(data):
        tag = data[pos:pos + 4].decode("ascii", "replace")
        size = struct.unpack_from("<I", data, pos + 4)[0]
        chunks[tag] = data[pos + 8:pos + 8 + size]
        order.append(tag)
        pos += 8 + size + (size % 2)
    fmt_tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", chunks["fmt "])
    raw = chunks["data"]
    if fmt_tag == 3:
        frames = np.frombuffer(raw, "<f4").reshape(-1, channels)
    elif bits == 16:
        frames = np.frombuffer(raw, "<i2").reshape(-1, channels) / 32767.0
    elif bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        frames = (ints / 8388607.0).reshape(-1, channels)
    else:
        raise ValueError(f"{path}: unsupported WAV format {fmt_tag}/{bits} bits")
    return BwfFile(samples=frames.T.astype(np.float32), sample_rate=rate, bit_depth=bits,
                   is_float=fmt_tag == 3, bext=_parse_bext(chunks["bext"]) if "bext" in chunks else {},
                   ixml=chunks.get("iXML", b"").decode("utf-8"), chunk_order=order)


def resample_to_output(samples: np.ndarray, sample_rate: int,
                       output_rate: int = OUTPUT_RATE) -> np.ndarray:
    """(channels, n) float at the model rate (16 / 44.1 kHz) -> 48 kHz with torchaudio."""
    if sample_rate == output_rate:
        return np.asarray(samples, dtype=np.float32)
    import torch
    import torchaudio.functional as AF

    wave = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    return AF.resample(wave, sample_rate, output_rate).numpy()
