"""Pictures of each class: the object that sounds, moving so that every contact is visible.

Each event is preceded by a visible approach (the striker falls, the hands close, the drop falls)
and marked at the contact by a short flash and a jolt, so the contact time can be read off the
picture to within a frame. Framing (offset, scale), background and colours vary per scene.
"""
from __future__ import annotations

import cv2
import numpy as np

from trainer.synth.scene import Scene

APPROACH = 0.28  # seconds of visible motion before a contact
REBOUND = 0.22
FLASH = 0.06


def _gap(time: float, events) -> tuple[float, float]:
    """(seconds until the next contact, seconds since the last one); inf when there is none."""
    ahead = min((e - time for e in events if e >= time), default=np.inf)
    behind = min((time - e for e in events if e <= time), default=np.inf)
    return ahead, behind


def _lift(time: float, events) -> float:
    """0 at a contact, rising to 1 (rest) over the approach (accelerating) and the rebound."""
    ahead, behind = _gap(time, events)
    up_before = min(1.0, (ahead / APPROACH) ** 2) if ahead < np.inf else 1.0
    up_after = min(1.0, behind / REBOUND) if behind < np.inf else 1.0
    return min(up_before, up_after)


def _background(scene: Scene) -> np.ndarray:
    h, w = scene.height, scene.width
    base = np.array(scene.look["background"], np.float32)
    ramp = np.linspace(1 - scene.look["gradient"], 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(base * ramp, (h, w, 3)).astype(np.uint8).copy()


def _tinted(colour, tint: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * (1 + 0.15 * tint), 0, 255)) for c in colour)


class _Canvas:
    def __init__(self, scene: Scene):
        self.scene = scene
        self.s = scene.look["scale"] * scene.height / 240
        self.cx = scene.width * (0.5 + scene.look["offset"][0])
        self.cy = scene.height * (0.5 + scene.look["offset"][1])

    def p(self, x: float, y: float) -> tuple[int, int]:
        """Scene units (origin at the framing centre, 1 unit = 1 px at scale 1, 240 lines)."""
        return int(round(self.cx + x * self.s)), int(round(self.cy + y * self.s))

    def rect(self, img, x0, y0, x1, y1, colour):
        cv2.rectangle(img, self.p(x0, y0), self.p(x1, y1), colour, -1, cv2.LINE_AA)

    def ellipse(self, img, x, y, rx, ry, colour, angle=0.0):
        cv2.ellipse(img, self.p(x, y), (max(1, int(rx * self.s)), max(1, int(ry * self.s))),
                    angle, 0, 360, colour, -1, cv2.LINE_AA)

    def flash(self, img, x, y, time):
        _, behind = _gap(time, self.scene.events)
        if behind < FLASH:
            radius = 10 + 50 * behind
            cv2.circle(img, self.p(x, y), int(radius * self.s), (255, 255, 230), 2, cv2.LINE_AA)


def _striker_scene(img, c: _Canvas, time, target_colour, striker_colour, target_w, target_h,
                   drop=70.0):
    lift = _lift(time, c.scene.events)
    jolt = 3.0 if _gap(time, c.scene.events)[1] < FLASH else 0.0
    c.rect(img, -target_w / 2, 40 + jolt, target_w / 2, 40 + target_h + jolt, target_colour)
    head_y = 40 - drop * lift
    c.rect(img, -4, head_y - 80, 4, head_y - 16, (90, 70, 50))  # handle
    c.rect(img, -18, head_y - 18, 18, head_y, striker_colour)
    c.flash(img, 0, 40, time)


def _metal(img, c, time):
    _striker_scene(img, c, time, _tinted((170, 175, 185), c.scene.look["tint"]), (60, 60, 70),
                   150, 14)


def _wood(img, c, time):
    _striker_scene(img, c, time, _tinted((140, 90, 45), c.scene.look["tint"]), (200, 170, 120),
                   110, 40)


def _glass(img, c, time):
    colour = _tinted((150, 220, 235), c.scene.look["tint"])
    c.rect(img, -25, -40, 25, 30, colour)  # bowl
    c.rect(img, -3, 30, 3, 70, colour)  # stem
    c.rect(img, -22, 70, 22, 76, colour)  # foot
    lift = _lift(time, c.scene.events)
    x = 27 + 70 * lift
    c.rect(img, x, -12, x + 80, -6, (200, 200, 205))  # the spoon comes in from the side
    c.ellipse(img, x + 4, -9, 7, 5, (200, 200, 205))
    c.flash(img, 25, -9, time)


def _ball(img, c, time):
    events, floor = c.scene.events, 80.0
    c.rect(img, -160, floor, 160, floor + 60, _tinted((110, 100, 90), c.scene.look["tint"]))
    ahead, behind = _gap(time, events)
    previous = [e for e in events if e <= time]
    following = [e for e in events if e > time]
    if previous and following:  # a parabola between bounces, apex from the flight time
        span = following[0] - previous[-1]
        u = (time - previous[-1]) / span
        height = 4 * u * (1 - u) * 600 * span ** 2
    elif following:  # falling in from above
        height = 300 * ahead ** 2
    else:  # the last bounce sends it up and out
        height = 300 * behind * (1.4 - behind)
    x = -120 + 240 * time / c.scene.duration
    radius = 16
    squash = 1.3 if behind < FLASH else 1.0
    c.ellipse(img, x * c.scene.look["direction"], floor - radius / squash - min(height, 400),
              radius * squash, radius / squash, _tinted((220, 60, 40), c.scene.look["tint"]))
    c.flash(img, x * c.scene.look["direction"], floor, time)


def _footsteps(img, c, time):
    events = c.scene.events
    swing = 0.3  # each foot swings forward and is planted at its event
    c.rect(img, -160, 60, 160, 120, _tinted((150, 105, 60), c.scene.look["tint"]))
    for foot in (0, 1):
        mine = [e for i, e in enumerate(events) if i % 2 == foot]
        planted = sum(1 for e in mine if e <= time)
        ahead = min((e - time for e in mine if e > time), default=np.inf)
        phase = 1 - ahead / swing if ahead < swing else 0.0
        x = -110 + 45 * (2 * (planted + phase) + foot)
        height = 40 * np.sin(np.pi * phase)
        c.ellipse(img, x * c.scene.look["direction"], 60 - 10 - height, 22, 10, (35, 30, 30))
    c.flash(img, 0, 60, time)


def _door(img, c, time):
    frame_colour = _tinted((100, 80, 60), c.scene.look["tint"])
    c.rect(img, -70, -100, 70, 100, frame_colour)
    c.rect(img, -62, -92, 62, 100, (15, 15, 20))  # the dark opening
    lift = _lift(time, c.scene.events)
    width = 124 * (1 - 0.85 * lift)  # the door swings shut: its visible width grows
    c.rect(img, -62, -92, -62 + width, 100, _tinted((150, 60, 50), c.scene.look["tint"]))
    c.flash(img, -62 + width, 0, time)


def _drip(img, c, time):
    c.rect(img, -30, -110, 30, -90, (160, 160, 170))  # the tap
    c.rect(img, -160, 70, 160, 130, _tinted((40, 90, 170), c.scene.look["tint"]))
    ahead, behind = _gap(time, c.scene.events)
    if ahead < APPROACH * 1.5:
        fall = 1 - (ahead / (APPROACH * 1.5)) ** 2
        c.ellipse(img, 0, -85 + 155 * fall, 5, 8, (120, 180, 255))
    if behind < 0.4:  # the ripple spreads
        cv2.ellipse(img, c.p(0, 72), (int((8 + 120 * behind) * c.s), int((3 + 20 * behind) * c.s)),
                    0, 0, 360, (200, 230, 255), 2, cv2.LINE_AA)


def _whoosh(img, c, time):
    events = c.scene.events
    ahead, behind = _gap(time, events)
    index = sum(1 for e in events if e <= time)
    direction = c.scene.look["direction"] * (-1) ** index
    offset = -ahead if ahead < behind else behind  # seconds relative to the nearest pass
    if abs(offset) < 0.35:
        x = direction * 900 * offset
        size = 16 + 90 * np.exp(-(offset / 0.06) ** 2)  # it passes close to the camera
        c.ellipse(img, x, 0, size, size * 0.6, _tinted((230, 200, 40), c.scene.look["tint"]))


def _clap(img, c, time):
    lift = _lift(time, c.scene.events)
    skin = _tinted((225, 175, 140), c.scene.look["tint"])
    gap = 6 + 60 * lift
    c.ellipse(img, -gap - 18, 0, 18, 40, skin, angle=-10)
    c.ellipse(img, gap + 18, 0, 18, 40, skin, angle=10)
    c.flash(img, 0, 0, time)


PAINTERS = {"metal": _metal, "wood": _wood, "glass": _glass, "ball": _ball,
            "footsteps": _footsteps, "door": _door, "drip": _drip, "whoosh": _whoosh,
            "clap": _clap}


def render_frame(scene: Scene, time: float, background: np.ndarray | None = None) -> np.ndarray:
    """The picture at `time` seconds: (height, width, 3) RGB uint8."""
    img = (_background(scene) if background is None else background).copy()
    PAINTERS[scene.sound_class](img, _Canvas(scene), time)
    return img


def frame_count(scene: Scene) -> int:
    return int(round(scene.duration * scene.fps))


def render_frames(scene: Scene):
    """Every frame of the scene at its frame rate (frame k shows time k / fps)."""
    background = _background(scene)
    for k in range(frame_count(scene)):
        yield render_frame(scene, float(k / scene.fps), background)
