"""The procedural Foley world that trains and tests the embedded starter model: seeded scenes of
visible contacts (video), their physically motivated sounds (audio), captions and event lists."""
from trainer.synth.scene import CLASSES, Scene, sample_scene
from trainer.synth.writer import write_scene, write_split

__all__ = ["CLASSES", "Scene", "sample_scene", "write_scene", "write_split"]
