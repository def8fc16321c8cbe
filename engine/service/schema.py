"""The shape of a job request, shared by the HTTP app and the in-process engine so that both
accept and refuse exactly the same bodies (pydantic)."""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from engine.service.jobs import MAX_PROMPT


FRACTION = r"^\d{1,12}(/\d{1,12})?$"  # exact seconds or rates, as "n" or "n/d"


class Delivery(BaseModel):
    """How a timeline delivers a segment's takes: exact file paths (its naming), the takes' time
    of day and rate, the head handle before the body, and provenance to add."""
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(min_length=1, max_length=64)
    record_start: str = Field(pattern=FRACTION)
    frame_rate: str = Field(pattern=FRACTION)
    head_handle: str = Field("0", pattern=FRACTION)
    extra_provenance: dict[str, Union[str, int, float, None]] = Field(default_factory=dict,
                                                                      max_length=16)


class JobCreate(BaseModel):
    """A generation: the media range (seconds from the media's first frame), the sound asked
    for, and the folder for the takes (absolute paths under the engine's allowed roots)."""
    model_config = ConfigDict(extra="forbid")
    media: str = Field(min_length=1, max_length=4096)
    out: str = Field(min_length=1, max_length=4096)
    start: float = Field(0.0, ge=0, allow_inf_nan=False)
    end: Optional[float] = Field(None, gt=0, allow_inf_nan=False)
    prompt: str = Field("", max_length=MAX_PROMPT)
    negative_prompt: str = Field("", max_length=MAX_PROMPT)
    guidance: Optional[float] = Field(None, ge=0, le=100, allow_inf_nan=False)
    mode: Optional[Literal["scaled", "standard", "none"]] = None
    steps: Optional[int] = Field(None, ge=1, le=1000)
    seed: int = Field(0, ge=0, le=2 ** 64 - 1)
    takes: int = Field(1, ge=1, le=64)
    best_of: Optional[int] = Field(None, ge=1, le=64)
    preview: bool = False
    delivery: Optional[Delivery] = None


def first_problem(errors: list[dict]) -> tuple[str, Optional[str]]:
    """(one line, field) for the first of pydantic's errors, without echoing the input."""
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where or 'body'}: {first.get('msg', 'invalid request')}", where or None


__all__ = ["Delivery", "JobCreate", "first_problem"]
