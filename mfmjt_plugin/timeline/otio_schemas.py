"""Reading .otio files written by a newer OpenTimelineIO than ours (0.18).

A newer writer stamps higher schema versions ("Marker.3") and may store values our reader cannot
decode (RGB marker colours where 0.18 has named ones). Such a file is read by relabelling each
newer schema to the version we know and mapping what changed; the caller is told what was
downgraded. A schema this version does not know at all is named in one line.
"""
from __future__ import annotations

import json
import math
import warnings

import opentimelineio as otio

from mfmjt_plugin.timeline.segments import TimelineError

# OTIO's named marker colours, as RGB, for mapping an RGB colour to the nearest name.
NAMED_COLOURS = {"PINK": (1.0, 0.75, 0.8), "RED": (1.0, 0.0, 0.0), "ORANGE": (1.0, 0.65, 0.0),
                 "YELLOW": (1.0, 1.0, 0.0), "GREEN": (0.0, 0.8, 0.0), "CYAN": (0.0, 1.0, 1.0),
                 "BLUE": (0.0, 0.0, 1.0), "PURPLE": (0.5, 0.0, 0.5), "MAGENTA": (1.0, 0.0, 1.0),
                 "BLACK": (0.0, 0.0, 0.0), "WHITE": (1.0, 1.0, 1.0)}


class SchemaDowngradeWarning(UserWarning):
    """A newer file was read with some of its schema versions relabelled (said once per file)."""


def nearest_colour(value) -> str:
    """'RED' stays; {"r": 1, "g": 0, "b": 0} / [1, 0, 0] / "#ff0000" become the nearest name."""
    if isinstance(value, str) and not value.startswith("#"):
        return value.upper() if value.upper() in NAMED_COLOURS else "RED"
    if isinstance(value, str):
        digits = value.lstrip("#")[:6]
        rgb = tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))
    elif isinstance(value, dict):
        rgb = tuple(float(value.get(k, 0.0)) for k in ("r", "g", "b"))
    else:
        rgb = tuple(float(v) for v in list(value)[:3])
    return min(NAMED_COLOURS, key=lambda name: math.dist(NAMED_COLOURS[name], rgb))


def downgrade(data, known: dict[str, int], changed: set[str], unknown: set[str]):
    """Walk the JSON tree, relabelling newer schema versions to the ones we know."""
    if isinstance(data, list):
        return [downgrade(item, known, changed, unknown) for item in data]
    if not isinstance(data, dict):
        return data
    result = {key: downgrade(value, known, changed, unknown) for key, value in data.items()}
    schema = result.get("OTIO_SCHEMA")
    if isinstance(schema, str) and "." in schema:
        name, _, version = schema.rpartition(".")
        if name not in known:
            unknown.add(schema)
        elif version.isdigit() and int(version) > known[name]:
            changed.add(f"{schema} as {name}.{known[name]}")
            result["OTIO_SCHEMA"] = f"{name}.{known[name]}"
            colour = result.get("color", "RED")
            if name == "Marker" and (not isinstance(colour, str) or colour.startswith("#")):
                result["color"] = nearest_colour(colour)
    return result


def read_newer_otio(path) -> otio.core.SerializableObject:
    """Read an .otio file from a newer OpenTimelineIO, downgrading what we can; warns with what
    was relabelled, raises TimelineError naming schemas we do not know."""
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as err:
        raise TimelineError(f"{path}: unreadable timeline ({err})") from None
    changed: set[str] = set()
    unknown: set[str] = set()
    # time values are plain structs in OTIO's JSON, outside the schema registry
    known = {"RationalTime": 1, "TimeRange": 1, "TimeTransform": 1, **otio.core.type_version_map()}
    downgraded = downgrade(data, known, changed, unknown)
    if unknown:
        raise TimelineError(f"{path}: written by a newer OpenTimelineIO with schemas this version "
                            f"({otio.__version__}) does not know: {', '.join(sorted(unknown))}; "
                            f"export it for OpenTimelineIO 0.18 or as FCP7 XML")
    try:
        result = otio.adapters.read_from_string(json.dumps(downgraded), adapter_name="otio_json")
    except Exception as err:  # a relabelled schema whose fields changed beyond what we map
        raise TimelineError(f"{path}: written by a newer OpenTimelineIO ({', '.join(sorted(changed))}"
                            f") and not readable as {otio.__version__} "
                            f"({type(err).__name__}: {err}); export it for OpenTimelineIO 0.18") from None
    warnings.warn(SchemaDowngradeWarning(
        f"{path}: written by a newer OpenTimelineIO; read {', '.join(sorted(changed))} "
        f"(RGB marker colours as the nearest named colour)"), stacklevel=2)
    return result
