"""Scenes: one sound class, several events at visually marked contact times, varied framing.

A scene is fully determined by its namespace and seed, so splits are seeds in separate
namespaces: `sample_scene(i, namespace="train")` never equals a scene of namespace "eval:7".
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

FRAME_RATES = (Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(60))
COUNT_WORDS = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}


@dataclass(frozen=True)
class SoundClass:
    name: str
    events: tuple[int, int]  # min, max events per scene
    min_gap: float  # seconds between events: room for the visible approach
    captions: tuple[str, ...]  # "{count}" is replaced by "twice", "three times", ...


CLASSES: tuple[SoundClass, ...] = (
    SoundClass("metal", (2, 5), 0.45, ("metal plate struck {count}", "hammer hits a metal plate",
                                       "clanging metal impacts")),
    SoundClass("wood", (2, 5), 0.35, ("knocking on a wooden block", "wood knocked {count}",
                                      "stick hits wood")),
    SoundClass("glass", (2, 5), 0.4, ("glass tapped {count}", "spoon taps a wine glass",
                                      "ringing glass taps")),
    SoundClass("ball", (3, 5), 0.3, ("rubber ball bouncing", "a ball bounces on the floor",
                                     "bouncing ball")),
    SoundClass("footsteps", (3, 6), 0.35, ("footsteps on wooden floor", "someone walking",
                                           "steps on a hard floor")),
    SoundClass("door", (1, 2), 1.2, ("door slams", "a heavy door slammed shut",
                                     "door slamming {count}")),
    SoundClass("drip", (2, 5), 0.4, ("water dripping", "drops falling into water",
                                     "water drips {count}")),
    SoundClass("whoosh", (1, 3), 0.8, ("whoosh past the camera", "something flies by quickly",
                                       "fast swoosh")),
    SoundClass("clap", (2, 6), 0.3, ("hands clapping", "clapping {count}",
                                     "a person claps hands")),
)
CLASS_NAMES = tuple(c.name for c in CLASSES)


@dataclass(frozen=True)
class Scene:
    seed: int
    namespace: str
    sound_class: str
    caption: str
    duration: float
    fps: Fraction
    events: tuple[float, ...]  # contact times in seconds
    width: int = 320
    height: int = 240
    # framing, colours and synthesis parameters, all drawn from the seed
    look: dict = field(default_factory=dict)
    sound: dict = field(default_factory=dict)

    @property
    def class_index(self) -> int:
        return CLASS_NAMES.index(self.sound_class)

    def to_json(self) -> dict:
        data = asdict(self)
        data["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        data["events"] = [{"time": round(t, 6), "class": self.sound_class} for t in self.events]
        return data


def _rng(namespace: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{namespace}:{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _event_times(rng: np.random.Generator, cls: SoundClass, duration: float) -> tuple[float, ...]:
    """Events in [0.45, duration - 0.25] at least min_gap apart (the approach must be visible)."""
    lo, hi = 0.45, duration - 0.25
    count = int(rng.integers(cls.events[0], cls.events[1] + 1))
    count = max(1, min(count, int((hi - lo) // cls.min_gap) + 1))
    slack = (hi - lo) - (count - 1) * cls.min_gap
    cuts = np.sort(rng.uniform(0.0, slack, size=count))
    return tuple(float(lo + c + i * cls.min_gap) for i, c in enumerate(cuts))


def sample_scene(seed: int, *, namespace: str = "train", duration: float = 4.0,
                 sound_class: str | None = None) -> Scene:
    rng = _rng(namespace, seed)
    cls = CLASSES[int(rng.integers(len(CLASSES)))]
    if sound_class is not None:
        cls = CLASSES[CLASS_NAMES.index(sound_class)]
    fps = FRAME_RATES[int(rng.integers(len(FRAME_RATES)))]
    events = _event_times(rng, cls, duration)
    template = cls.captions[int(rng.integers(len(cls.captions)))]
    caption = template.replace("{count}", COUNT_WORDS.get(len(events), f"{len(events)} times"))
    look = {
        "background": [int(v) for v in rng.integers(20, 110, size=3)],
        "gradient": float(rng.uniform(0.0, 0.5)),
        "scale": float(rng.uniform(0.8, 1.2)),
        "offset": [float(rng.uniform(-0.12, 0.12)), float(rng.uniform(-0.08, 0.08))],
        "tint": float(rng.uniform(-1.0, 1.0)),
        "direction": int(rng.choice([-1, 1])),
    }
    sound = {
        "pitch": float(rng.uniform(0.8, 1.25)),
        "decay": float(rng.uniform(0.75, 1.3)),
        "gain_db": float(rng.uniform(-8.0, 0.0)),
        "noise_db": float(rng.uniform(-70.0, -55.0)),
        "event_gains": [float(g) for g in rng.uniform(0.7, 1.0, size=len(events))],
        "noise_seed": int(rng.integers(2 ** 31)),
    }
    return Scene(seed=seed, namespace=namespace, sound_class=cls.name, caption=caption,
                 duration=duration, fps=fps, events=events, look=look, sound=sound)

