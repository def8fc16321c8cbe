"""Broadcast WAV: chunks round-trip, timecode lands on the right sample, lengths are frame-exact."""
import datetime as dt
from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest

from engine.media.bwf import (BroadcastInfo, LoudnessTarget, encode_bwf, frame_exact_length,
                              read_bwf, resample_to_output, write_bwf)
from engine.naming import next_version_path

RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
         Fraction(50), Fraction(60000, 1001), Fraction(60)]


def tone(seconds=1.0, rate=48000, channels=1, amp=0.25, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([amp * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]).astype(np.float32)


@pytest.mark.parametrize("bits,channels", [(16, 1), (24, 1), (24, 2), (32, 2)])
def test_chunks_and_samples_round_trip(tmp_path, bits, channels):
    audio = tone(0.5, channels=channels)
    when = dt.datetime(2026, 11, 23, 14, 5, 9)
    info = BroadcastInfo(description="MF-MJT take 2: glass tapped twice; seed 7",
                         originator_reference="take-0002", origination=when,
                         record_start=Fraction(3600), timecode_rate=Fraction(25),
                         project="reel 1", note="prompt: glass", coding_history="A=PCM,F=48000\r\n")
    path = write_bwf(tmp_path / "a.wav", audio, bit_depth=bits, info=info)
    back = read_bwf(path)
    assert back.sample_rate == 48000 and back.bit_depth == bits and back.is_float == (bits == 32)
    assert back.samples.shape == audio.shape
    tolerance = {16: 1 / 32767, 24: 1 / 8388607, 32: 0}[bits]
    assert np.abs(back.samples - audio).max() <= tolerance
    assert back.bext["description"] == info.description
    assert back.bext["originator"] == "MF-MJT Foley"
    assert back.bext["originator_reference"] == "take-0002"
    assert (back.bext["origination_date"], back.bext["origination_time"]) == ("2026-11-23", "14:05:09")
    assert back.bext["time_reference"] == 3600 * 48000 and back.bext["version"] == 2
    assert back.bext["coding_history"] == "A=PCM,F=48000\r\n"
    assert "<TIMECODE_RATE>25/1</TIMECODE_RATE>" in back.ixml and "<NOTE>prompt: glass</NOTE>" in back.ixml
    assert back.chunk_order.index("bext") < back.chunk_order.index("data")
    assert ("fact" in back.chunk_order) == (bits == 32)


def test_drop_frame_record_time_lands_on_the_right_sample(tmp_path):
    rate = Fraction(30000, 1001)
    record = otio.opentime.from_timecode("01:00:00;00", float(rate))  # drop-frame (';')
    assert record.value == 107892  # 1 h of 29.97 DF labels
    seconds = Fraction(int(record.value)) / rate
    info = BroadcastInfo(record_start=seconds, timecode_rate=rate, drop_frame=True)
    back = read_bwf(write_bwf(tmp_path / "df.wav", tone(0.2), info=info, frame_rate=rate))
    assert back.bext["time_reference"] == round(107892 * Fraction(48000 * 1001, 30000))
    assert back.bext["time_reference"] == 172_799_827  # 3599.9964 s of real time
    assert "<TIMECODE_FLAG>DF</TIMECODE_FLAG>" in back.ixml
    assert "<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>172799827<" in back.ixml


def test_head_handle_moves_the_time_reference_back(tmp_path):
    info = BroadcastInfo(record_start=Fraction(10), timecode_rate=Fraction(24))
    back = read_bwf(write_bwf(tmp_path / "h.wav", tone(3.0), info=info, head_handle=Fraction(1)))
    assert back.bext["time_reference"] == 9 * 48000
    with pytest.raises(ValueError, match="before midnight"):
        encode_bwf(tone(0.1), info=BroadcastInfo(record_start=Fraction(1, 2)), head_handle=Fraction(1))


@pytest.mark.parametrize("rate", RATES, ids=lambda r: f"{float(r):.3f}")
def test_length_is_padded_to_whole_frames(rate):
    n = 48000 + 1234
    length = frame_exact_length(n, rate)
    frames = Fraction(length) * rate / 48000
    assert length >= n
    assert abs(frames - round(frames)) * 48000 / rate < 1  # within a sample of a whole frame
    assert length - n < Fraction(48000) / rate + 1  # at most one frame of padding
    audio = np.ones((1, n), np.float32) * 0.1
    decoded = read_bwf_bytes(encode_bwf(audio, frame_rate=rate))
    assert decoded.samples.shape[1] == length and decoded.samples[0, n:].max() == 0


def read_bwf_bytes(data):
    import tempfile
    from pathlib import Path
    path = Path(tempfile.mkdtemp()) / "x.wav"
    path.write_bytes(data)
    return read_bwf(path)


def test_loudness_normalisation_hits_the_target(tmp_path):
    import pyloudnorm
    audio = tone(3.0, amp=0.05)
    back = read_bwf(write_bwf(tmp_path / "l.wav", audio, bit_depth=32,
                              loudness=LoudnessTarget(integrated_lufs=-23.0, peak_ceiling_dbfs=-1.0)))
    measured = pyloudnorm.Meter(48000).integrated_loudness(back.samples.T.astype(np.float64))
    assert abs(measured - (-23.0)) < 0.1
    assert back.bext["loudness_value"] == pytest.approx(-23.0, abs=0.1)
    # a peak ceiling wins over the loudness target
    loud = read_bwf(write_bwf(tmp_path / "p.wav", audio, bit_depth=32,
                              loudness=LoudnessTarget(integrated_lufs=-3.0, peak_ceiling_dbfs=-6.0)))
    assert 20 * np.log10(np.abs(loud.samples).max()) == pytest.approx(-6.0, abs=0.01)


def test_never_overwrites_and_versions_names(tmp_path):
    first = write_bwf(tmp_path / "reel_FOLEY_glass_v001.wav", tone(0.1))
    before = first.read_bytes()
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_bwf(first, tone(0.2))
    assert first.read_bytes() == before
    assert next_version_path(tmp_path, "reel_FOLEY_glass").name == "reel_FOLEY_glass_v002.wav"
    (tmp_path / "reel_FOLEY_glass_v007.wav").write_bytes(b"")
    assert next_version_path(tmp_path, "reel_FOLEY_glass").name == "reel_FOLEY_glass_v008.wav"
    assert next_version_path(tmp_path, "other").name == "other_v001.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel_FOLEY_glass_v001.wav",
                                                           "reel_FOLEY_glass_v007.wav"]


def test_bad_samples_are_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        encode_bwf(np.full((1, 10), np.nan, np.float32))
    with pytest.raises(ValueError, match="bit depth"):
        encode_bwf(tone(0.1), bit_depth=20)
    with pytest.raises(ValueError, match="channels"):
        encode_bwf(np.zeros((3, 10), np.float32))


def test_resampling_to_48k_keeps_a_tone():
    audio = tone(1.0, rate=16000, freq=1000.0)
    out = resample_to_output(audio, 16000)
    assert out.shape == (1, 48000)
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz bins


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_ffmpeg_reads_our_files_identically(tmp_path, bits):
    """An independent reader (FFmpeg through PyAV) sees the same format and samples."""
    import av
    audio = tone(0.25, channels=2)
    path = write_bwf(tmp_path / "x.wav", audio, bit_depth=bits,
                     info=BroadcastInfo(description="ffmpeg check"))
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == 48000 and stream.channels == 2
        assert stream.codec_context.name == {16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_f32le"}[bits]
        decoded = np.concatenate([f.to_ndarray().reshape(-1, 2) if f.format.is_packed
                                  else f.to_ndarray().T for f in container.decode(stream)])
    scale = {16: 32768.0, 24: 2147483648.0, 32: 1.0}[bits]  # FFmpeg widens s24 to s32
    assert np.abs(decoded.T / scale - audio).max() < 2e-4
