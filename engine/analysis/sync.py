"""The per-take sync score (issue 14): how well a take's sound onsets agree with the picture's motion
onsets, from 0 (none agree) to 1 (every onset has a partner within the tolerance).

Picture: the motion envelope is the mean absolute difference between consecutive sync frames
(25 fps, small grey images), its rises are novelty, and motion onsets are novelty peaks well above
the clip's typical motion (so a steady pan or a handheld wobble does not read as contacts). Sound:
the same onset detector the evaluator uses (engine/analysis/onsets.py). The score is the F1 of a
one-to-one matching within ±TOLERANCE (a frame at 25 fps is 40 ms; hits and contacts are not
always on the same frame). When neither has onsets the take agrees with the picture (1.0); when
only one has, it does not (0.0).
"""
from __future__ import annotations

import numpy as np

from engine.analysis.onsets import detect_onsets, match_onsets

TOLERANCE = 0.1  # seconds
MIN_GAP = 0.1
NOVELTY_FLOOR = 0.002  # mean absolute grey-level change (0..1): below it, compression noise
RELATIVE = 0.45  # a rise must reach this share of the clip's largest motion


def motion_envelope(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N,) float32 mean absolute change from the previous frame
    (grey, 0..1; the first frame 0), on a 4x down-sampled picture."""
    if len(frames) == 0:
        return np.zeros(0, np.float32)
    grey = frames[:, ::4, ::4].astype(np.float32).mean(axis=-1) / 255.0
    change = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
    return np.concatenate([[0.0], change]).astype(np.float32)


def motion_onsets(envelope: np.ndarray, fps: float) -> np.ndarray:
    """Times (s, ascending) of the envelope's sharp rises."""
    envelope = np.asarray(envelope, np.float64)
    if len(envelope) < 3:
        return np.zeros(0)
    # the rise from the lowest of the two frames before: a contact stops the motion for a frame
    # (the dip) and the rebound, jolt or flash follows (synth world and real hits alike)
    before = np.minimum(np.concatenate([[envelope[0]], envelope[:-1]]),
                        np.concatenate([envelope[:2], envelope[:-2]]))
    novelty = np.maximum(envelope - before, 0.0)
    threshold = max(NOVELTY_FLOOR, RELATIVE * envelope.max())
    radius = int(round(MIN_GAP * fps))
    picks: list[int] = []
    for n in np.argsort(-novelty, kind="stable"):
        if novelty[n] < threshold or novelty[n] <= 0:
            break
        if all(abs(n - p) > radius for p in picks):
            picks.append(int(n))
    return np.sort(np.array(picks, np.float64)) / fps


def sync_score(audio: np.ndarray, sample_rate: int, picture_onsets: np.ndarray) -> float:
    """F1 (0..1) of the take's sound onsets against the picture's motion onsets."""
    sound = detect_onsets(np.asarray(audio, np.float32), sample_rate)
    picture = np.asarray(picture_onsets, np.float64)
    if len(sound) == 0 and len(picture) == 0:
        return 1.0
    score = match_onsets(picture, sound, window=TOLERANCE)
    total = score.detected + score.reference
    return round(2 * score.hits / total, 4) if total else 0.0
