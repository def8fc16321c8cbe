"""Spectrogram pictures for the model card (issue 14): for two ringing and two noise-like scenes,
the log-mel of the real audio, the codec round trip and the generated take, side by side, as PNG
(OpenCV: no plotting library in the product's environment)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from engine.atomic import atomic_target
from engine.codec.mel import MEL_16K, MelConverter

PICTURE_CLASSES = ("metal", "glass", "footsteps", "clap")
FLOOR, CEILING = -5.0, 0.5  # log10 mel range shown


def spectrogram_image(wave: torch.Tensor, label: str, scale: int = 2) -> np.ndarray:
    """(samples,) -> BGR image of the log-mel (low frequencies at the bottom) with a caption."""
    mel = MelConverter(MEL_16K)(wave[None])[0].numpy()
    level = np.clip((mel - FLOOR) / (CEILING - FLOOR), 0, 1)
    image = cv2.applyColorMap((level[::-1] * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)
    image = cv2.resize(image, (image.shape[1] * scale // 2, image.shape[0] * scale),
                       interpolation=cv2.INTER_NEAREST)
    caption = np.zeros((22, image.shape[1], 3), np.uint8)
    cv2.putText(caption, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.vstack([caption, image])


def write_pictures(folder: Path | str, scenes, stages: dict[str, torch.Tensor]) -> list[str]:
    """One PNG per picked scene, the stages left to right; returns the file names written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PICTURE_CLASSES:
        index = next((i for i, s in enumerate(scenes) if s.sound_class == name), None)
        if index is None:
            continue
        gap = np.full((MEL_16K.n_mels * 2 + 22, 6, 3), 40, np.uint8)
        tiles = []
        for stage, audio in stages.items():
            tiles += [spectrogram_image(audio[index], f"{name}: {stage}"), gap]
        path = folder / f"spectrogram_{name}.png"
        ok, data = cv2.imencode(".png", np.hstack(tiles[:-1]))
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {path}")
        with atomic_target(path, overwrite=True) as tmp:
            tmp.write_bytes(data.tobytes())
        written.append(path.name)
    return written
