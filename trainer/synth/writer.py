"""Writing scenes to disk: MP4 (H.264 picture + lossless audio), WAV, caption sidecar, events JSON.

Layout of a split directory (the trainer scans `video/`; evaluation reads `audio/` and `events/`):
    video/scene-<ns>-<seed>.mp4  + .txt caption sidecar
    audio/scene-<ns>-<seed>.wav  (16 kHz mono 16-bit, the clean reference)
    events/scene-<ns>-<seed>.json
The MP4 carries its audio as ALAC: lossless and without an encoder delay, so sound and picture
stay aligned to the sample (AAC's priming samples would shift every contact by 64 ms).
Every file is written atomically; existing scenes are kept, so an interrupted run resumes.
"""
from __future__ import annotations

import json
import wave
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import av
import numpy as np

from engine.atomic import atomic_target
from trainer.synth.audio import SAMPLE_RATE, synthesize
from trainer.synth.scene import Scene, sample_scene
from trainer.synth.video import render_frames


def scene_name(scene: Scene) -> str:
    return f"scene-{scene.namespace.replace(':', '_')}-{scene.seed:06d}"


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2")
    with atomic_target(path, overwrite=True) as tmp, wave.open(str(tmp), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(sample_rate)
        fh.writeframes(pcm.tobytes())


def write_mp4(path: Path, scene: Scene, audio: Optional[np.ndarray]) -> None:
    with atomic_target(path, overwrite=True) as tmp:
        with av.open(str(tmp), "w", format="mp4") as out:
            video = out.add_stream("libx264", rate=scene.fps)
            video.width, video.height, video.pix_fmt = scene.width, scene.height, "yuv420p"
            video.time_base = Fraction(1) / scene.fps
            video.options = {"crf": "20", "preset": "veryfast", "g": "48"}
            sound = None
            if audio is not None:
                sound = out.add_stream("alac", rate=SAMPLE_RATE, layout="mono")
            for index, frame in enumerate(render_frames(scene)):
                picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
                picture.pts = index
                out.mux(video.encode(picture))
            out.mux(video.encode())
            if sound is not None:
                pcm = (np.clip(audio, -1, 1) * 32767).round().astype(np.int16)[None]
                chunk = 4096
                for start in range(0, pcm.shape[1], chunk):
                    block = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start:start + chunk]),
                                                       format="s16p", layout="mono")
                    block.sample_rate, block.pts = SAMPLE_RATE, start
                    out.mux(sound.encode(block))
                out.mux(sound.encode())


def write_scene(scene: Scene, out_dir: Path | str) -> dict[str, Path]:
    out_dir = Path(out_dir)
    name = scene_name(scene)
    paths = {"video": out_dir / "video" / f"{name}.mp4", "caption": out_dir / "video" / f"{name}.txt",
             "audio": out_dir / "audio" / f"{name}.wav",
             "events": out_dir / "events" / f"{name}.json"}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    if all(p.exists() for p in paths.values()):
        return paths
    audio = synthesize(scene)
    write_wav(paths["audio"], audio)
    write_mp4(paths["video"], scene, audio)
    with atomic_target(paths["caption"], overwrite=True) as tmp:
        tmp.write_text(scene.caption + "\n")
    with atomic_target(paths["events"], overwrite=True) as tmp:  # last: marks the scene complete
        tmp.write_text(json.dumps(scene.to_json(), indent=1))
    return paths


def write_split(out_dir: Path | str, namespace: str, count: int, *, first: int = 0,
                duration: float = 4.0,
                progress: Optional[Callable[[int, int], None]] = None) -> list[dict[str, Path]]:
    written = []
    for i in range(count):
        written.append(write_scene(sample_scene(first + i, namespace=namespace,
                                                duration=duration), out_dir))
        if progress is not None:
            progress(i + 1, count)
    return written


def load_events(path: Path | str) -> dict:
    data = json.loads(Path(path).read_text())
    data["fps"] = Fraction(data["fps"])
    data["event_times"] = [e["time"] for e in data["events"]]
    return data
