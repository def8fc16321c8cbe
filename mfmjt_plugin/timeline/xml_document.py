"""An editor's XML timeline (FCP7 xmeml, FCPXML) kept as they wrote it: parsed with comments and
processing instructions, the text before the root (XML declaration, DOCTYPE) kept verbatim, our
elements inserted with the document's own indentation and tagged so they can be told apart."""
from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterator, Optional

from mfmjt_plugin.timeline.segments import TimelineError, url_path

# What we add is tagged with this attribute, so tests (and a later run) tell ours from theirs.
OURS = "MZ.mfmjt"


def read_document(path: Path, root_tag: str, kind: str) -> tuple[str, ET.Element]:
    """(the text before the root element, the root element)."""
    raw = path.read_text(encoding="utf-8-sig")
    start = re.search(rf"<{root_tag}\b", raw)
    if start is None:
        raise TimelineError(f"{path}: not an {kind} document (no <{root_tag}> element)")
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    try:
        root = ET.fromstring(raw, parser=parser)
    except ET.ParseError as err:
        raise TimelineError(f"{path}: unreadable {kind} ({err})") from None
    return raw[:start.start()], root


def serialise(prolog: str, root: ET.Element) -> str:
    return prolog + ET.tostring(root, encoding="unicode") + "\n"


def depth_of(root: ET.Element, target: ET.Element) -> int:
    def walk(element: ET.Element, level: int) -> Optional[int]:
        if element is target:
            return level
        for child in element:
            found = walk(child, level + 1)
            if found is not None:
                return found
        return None
    return walk(root, 0) or 0


def indent_unit(root: ET.Element) -> str:
    """The document's indentation step (Premiere writes tabs, Final Cut four spaces)."""
    text = root.text or ""
    match = re.search(r"\n([ \t]+)$", text)
    return match.group(1) if match else "\t"


def insert_formatted(parent: ET.Element, child: ET.Element, index: int, depth: int,
                     unit: str = "\t") -> None:
    """Insert `child` at `index` among `parent`'s children, indented like its siblings."""
    ET.indent(child, space=unit, level=depth)
    inner = "\n" + unit * depth
    if len(parent) == 0:
        child.tail = parent.text if parent.text and not parent.text.strip() else "\n" + unit * (depth - 1)
        parent.text = inner
    elif index >= len(parent):
        last = parent[-1]
        child.tail = last.tail
        last.tail = inner
    else:
        child.tail = inner
        if index == 0:
            parent.text = inner
        else:
            parent[index - 1].tail = inner
    parent.insert(index, child)


def unique_ids(root: ET.Element, prefix: str) -> Iterator[str]:
    used = {e.get("id") for e in root.iter() if e.get("id")}
    number = 0
    while True:
        number += 1
        candidate = f"{prefix}-{number}"
        if candidate not in used:
            used.add(candidate)
            yield candidate


def without_ours(root: ET.Element,
                 is_ours: Callable[[ET.Element], bool] = lambda e: bool(e.get(OURS))) -> ET.Element:
    """A copy of `root` with every element we add removed (tests compare it with the source)."""
    root = copy.deepcopy(root)
    for parent in root.iter():
        for child in list(parent):
            if is_ours(child):
                parent.remove(child)
    return root


def relinked_url(url: str, files: dict) -> Optional[str]:
    """The URL of the file `url` was relinked to (None when it was found where it said)."""
    key = url_path(url.strip())  # keyed as the timeline reader keys media (segments.media_path)
    found = files.get(key)
    if found is None or Path(key) == Path(found):
        return None
    return Path(found).resolve().as_uri()
