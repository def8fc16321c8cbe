"""Windows: mono, resampled, split at the training length, silence skipped, short files padded."""
import numpy as np

from engine.media.bwf import write_bwf
from trainer.data import iter_windows, scan_library


def test_windows_of_a_long_stereo_file_with_a_silent_stretch(tmp_path):
    rate = 44100
    t = np.arange(rate * 20) / rate
    left = 0.3 * np.sin(2 * np.pi * 1000 * t)
    left[rate * 8:rate * 16] = 0.0  # windows 2 (8-16 s) is silent
    stereo = np.stack([left, left]).astype(np.float32)
    write_bwf(tmp_path / "long.wav", stereo, sample_rate=rate, bit_depth=32)
    write_bwf(tmp_path / "short.wav", stereo[:, : rate // 2], sample_rate=rate, bit_depth=32)
    items = {i.path.name: i for i in scan_library(tmp_path).items}
    windows = list(iter_windows(items["long.wav"], window_seconds=8.0, sample_rate=16000))
    assert [w.start for w in windows] == [0.0]  # 8-16 s silent, 16-20 s not a whole window
    audio = windows[0].audio
    assert audio.shape == (128000,) and audio.dtype == np.float32 and not windows[0].padded
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 1000) < 2  # pitch kept at 16 kHz
    assert abs(np.sqrt(np.mean(audio ** 2)) - 0.3 / np.sqrt(2)) < 0.01  # mono mix keeps level
    short, = iter_windows(items["short.wav"], window_seconds=8.0, sample_rate=16000)
    assert short.padded and short.audio.shape == (128000,)
    assert np.abs(short.audio[8000 + 100:]).max() == 0  # silence after the 0.5 s of sound
