"""`mfmjt train codec` on a studio library with awkward files (issue 14 'bad input'): silent,
clipped, stereo, 8-bit and unreadable files; the library is never modified."""
import json
import subprocess
import sys
import wave

import numpy as np
import pytest
from safetensors.torch import load_file

from engine.codec.starter import StarterCodec
from tests.library_factory import tree_hashes, write_audio
from trainer.codec_library import library_clips


def _wav(path, data: np.ndarray, *, rate=16000, width=2):
    """A plain PCM WAV through the standard library: 8-bit is unsigned, 16-bit signed."""
    data = np.atleast_2d(data)
    if width == 1:
        pcm = np.clip(np.round(data.T * 127 + 128), 0, 255).astype(np.uint8)
    else:
        pcm = np.clip(np.round(data.T * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(data.shape[0])
        fh.setsampwidth(width)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def awkward_library(tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    t = np.arange(16000 * 2) / 16000
    ring = 0.4 * np.sin(2 * np.pi * 660 * t) * np.exp(-t / 0.4)
    _wav(root / "silent.wav", np.zeros_like(t))
    _wav(root / "clipped.wav", np.clip(3 * np.sin(2 * np.pi * 220 * t), -1, 1))
    _wav(root / "stereo_8bit.wav", np.stack([ring, ring]), width=1)
    _wav(root / "mono_16bit.wav", ring)
    write_audio(root / "tone.flac", 1.5, 44100, "flac", channels=2, fmt="s16")
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return root


def test_library_clips_skip_silence_keep_and_count_clipping_and_downmix(awkward_library):
    clips = library_clips(awkward_library, seconds=1.0)
    reasons = {p.name: r for p, r in clips.skipped}
    assert "silent (peak under -60 dBFS)" in reasons["silent.wav"]
    assert "broken.wav" in reasons
    assert [p.name for p in clips.clipped_files] == ["clipped.wav"]
    assert clips.files == 4 and clips.waves.shape[1] == 16000
    assert clips.waves.abs().max() <= 1.0
    # the 8-bit stereo file gives the same ring as the 16-bit mono one (an 8-bit step is 1/127)
    rings = [w for w in clips.waves if abs(float(w[:800].abs().max()) - 0.4) < 0.02]
    assert len(rings) == 2  # the first second of each of the two files
    assert float((rings[0] - rings[1]).abs().max()) < 1.5 / 127


def test_train_codec_cli_trains_every_part_and_never_touches_the_library(awkward_library, tmp_path):
    before = tree_hashes(awkward_library)
    out = tmp_path / "codec-run"
    cmd = [sys.executable, "-m", "mfmjt_plugin.cli", "train", "codec", str(awkward_library),
           "--out", str(out), "--steps", "10"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "skipped" in run.stdout and "silent.wav" in run.stdout and "clipped.wav" in run.stdout
    assert json.loads((out / "progress.json").read_text()) == \
        {"vae_steps": 10, "vocoder_steps": 10, "vocoder-timbre_steps": 10, "vocoder-gan_steps": 1}
    StarterCodec().load_state_dict(load_file(str(out / "codec.safetensors")), strict=True)
    assert tree_hashes(awkward_library) == before
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "add --resume" in again.stderr
    assert "Traceback" not in again.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    _wav(empty / "silence.wav", np.zeros(16000))
    nothing = subprocess.run([sys.executable, "-m", "mfmjt_plugin.cli", "train", "codec",
                              str(empty), "--out", str(tmp_path / "o2")],
                             capture_output=True, text=True, timeout=120)
    assert nothing.returncode == 1 and "no file with sound" in nothing.stderr
