"""Recipes: training settings as TOML data in trainer/recipes (not code)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from engine.errors import UserError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass(frozen=True)
class Recipe:
    name: str
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    warmup_steps: int
    decay_steps: tuple[int, ...]
    decay_factor: float
    grad_clip: float
    steps: int
    batch_size: int
    ema_decay: float
    checkpoint_every: int
    seed: int
    mu: float
    sigma: float
    mean_ratio: float
    full_jump_ratio: float
    adaptive_weighting: bool
    adaptive_p: float
    adaptive_c: float
    video_dropout: float
    text_dropout: float
    joint_dropout: float = 0.0  # both conditions at once, on top of the independent drops

    def lr_factor(self, step: int) -> float:
        """Linear warm-up, then x decay_factor at each decay step (paper §3.2)."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return warm * self.decay_factor ** sum(step >= s for s in self.decay_steps)


def load_recipe(name_or_path: str) -> Recipe:
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
        raise FileNotFoundError(f"recipe {name_or_path!r} not found; known recipes: {known}")
    data = tomllib.loads(path.read_text())
    flat = {"name": path.stem, **data.get("optim", {}), **data.get("train", {}),
            **data.get("meanflow", {}),
            "video_dropout": data.get("dropout", {}).get("video"),
            "text_dropout": data.get("dropout", {}).get("text"),
            "joint_dropout": data.get("dropout", {}).get("joint", 0.0)}
    flat["betas"] = tuple(flat.get("betas", ()))
    flat["decay_steps"] = tuple(flat.get("decay_steps", ()))
    names = {f.name for f in fields(Recipe)}
    missing = sorted(n for n in names if flat.get(n) is None)
    unknown = sorted(set(flat) - names)
    if missing or unknown:
        raise UserError(f"{path}: recipe keys missing {missing}, unknown {unknown}; compare it "
                        f"with {RECIPES_DIR / 'starter.toml'}", field="recipe")
    return Recipe(**{k: flat[k] for k in names})
