"""MLT XML, the project format of Shotcut and Kdenlive, rendered by `melt` (NLE.md).

OpenTimelineIO 0.18 ships no MLT writer (the 2021 `otio-mlt-adapter` puts audio under video, mixes
no audio tracks and ignores disabled tracks, so a render plays only one track), hence this one.
How an OTIO timeline maps onto MLT's model:
- every track is a `playlist` of `entry` (in/out frames of a producer, out inclusive) and `blank`;
  nested stacks become `tractor`s and nested tracks `playlist`s, used as producers by their parent;
- the main tractor stacks a black, silent background, the video tracks (lowest first; MLT shows
  the topmost non-blank one, as editors expect), then the audio tracks; video tracks hide their
  audio and audio tracks their picture, because in OTIO the sound lives on the audio tracks;
  disabled tracks hide both; a `mix` transition sums every audio track into the background;
- an OTIO transition overlaps its neighbours by (in_offset, out_offset): the outgoing clip is
  cut short by in_offset, the incoming one starts out_offset later, and between them a small
  tractor plays both for in_offset + out_offset frames with a dissolve (`luma`) and a crossfade
  (`mix`);
- a `LinearTimeWarp` becomes MLT's `timewarp` producer; a freeze frame cannot be expressed;
- markers are written the way Shotcut stores them (`shotcut:markers`), our metadata as
  `mfmjt:metadata` JSON on the producer.
All times are whole frames of the timeline rate. Known in the renderer, not here: MLT 7.12's
avformat producer starts a file up to a few hundred samples off at some small in-points (under
about 12 frames); our takes start 1 s (a whole number of frames) into their files, past that.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from fractions import Fraction
from itertools import count
from typing import Optional

import opentimelineio as otio

from mfmjt_plugin.timeline.segments import TimelineError, media_path, timeline_rate

MARKER_COLOURS = {"RED": "#ff0000", "PINK": "#ff69b4", "ORANGE": "#ffa500", "YELLOW": "#ffff00",
                  "GREEN": "#00ff00", "CYAN": "#00ffff", "BLUE": "#0000ff",
                  "PURPLE": "#800080", "MAGENTA": "#ff00ff", "BLACK": "#000000",
                  "WHITE": "#ffffff"}


def _frames(time: otio.opentime.RationalTime, rate: float) -> int:
    return int(round(time.rescaled_to(rate).value))


def _plain(value):
    """OTIO's metadata containers as plain JSON values."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "AnyVector":
        return [_plain(v) for v in value]
    return value


def _property(parent: ET.Element, name: str, value) -> None:
    ET.SubElement(parent, "property", name=name).text = str(value)


class _Writer:
    def __init__(self, timeline: otio.schema.Timeline, width: int, height: int):
        self.timeline = timeline
        self.rate = timeline_rate(timeline)
        self.fps = Fraction(self.rate).limit_denominator(1001)
        self.root = ET.Element("mlt", LC_NUMERIC="C", title=timeline.name or "timeline")
        ET.SubElement(self.root, "profile", description="MF-MJT Foley", width=str(width),
                      height=str(height), progressive="1", sample_aspect_num="1",
                      sample_aspect_den="1", display_aspect_num=str(width),
                      display_aspect_den=str(height),
                      frame_rate_num=str(self.fps.numerator),
                      frame_rate_den=str(self.fps.denominator), colorspace="709")
        self.ids = count()
        self.black: Optional[str] = None

    def _element(self, tag: str, prefix: str, **attrib) -> ET.Element:
        # MLT resolves references by id, so a producer must come before what uses it:
        # elements are appended in the order they are made, children first
        element = ET.SubElement(self.root, tag, id=f"{prefix}{next(self.ids)}", **attrib)
        return element

    def _black(self, length: int) -> str:
        """A black, silent producer long enough for `length` frames (gaps inside transitions,
        the background)."""
        element = self._element("producer", "black", **{"in": "0", "out": str(max(length, 1) - 1)})
        for name, value in (("length", max(length, 1)), ("eof", "pause"), ("resource", "0"),
                            ("aspect_ratio", 1), ("mlt_service", "color"),
                            ("mlt_image_format", "rgba"), ("set.test_audio", 0)):
            _property(element, name, value)
        return element.get("id")

    def _clip_producer(self, clip: otio.schema.Clip) -> tuple[str, int]:
        """(producer id, frame of the clip's first source frame in that producer)."""
        scalar = 1.0
        for effect in clip.effects:
            if isinstance(effect, otio.schema.FreezeFrame) or (
                    isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar == 0):
                raise TimelineError(f"clip {clip.name!r}: MLT XML cannot hold a freeze frame; "
                                    f"choose another --format")
            if isinstance(effect, otio.schema.LinearTimeWarp):
                scalar *= effect.time_scalar
        path = media_path(clip)
        available = getattr(clip.media_reference, "available_range", None)
        origin = available.start_time if available is not None else otio.opentime.RationalTime(
            0, self.rate)
        source = clip.trimmed_range()
        first = _frames(source.start_time - origin, self.rate)
        needed = first + int(round(_frames(source.duration, self.rate) * abs(scalar))) + 1
        length = max(needed, _frames(available.duration, self.rate) if available else 0)
        if path is None:  # offline or generated media: keep its place, show black
            producer = self._black(length)
            return producer, first
        if scalar != 1.0:
            # MLT's timewarp producer counts frames of the warped clip
            length = int(length / abs(scalar)) + 1
            first = int(round(first / scalar))
        element = self._element("producer", "producer",
                                **{"in": "0", "out": str(length - 1)})
        if scalar != 1.0:
            _property(element, "resource", f"{scalar:.6f}:{path}")
            _property(element, "mlt_service", "timewarp")
            _property(element, "warp_speed", f"{scalar:.6f}")
            _property(element, "warp_resource", path)
        else:
            _property(element, "resource", path)
            _property(element, "mlt_service", "avformat-novalidate")
        _property(element, "length", length)
        _property(element, "eof", "pause")
        _property(element, "shotcut:caption", clip.name)
        _property(element, "kdenlive:clipname", clip.name)
        if "mfmjt" in clip.metadata:
            _property(element, "mfmjt:metadata",
                      json.dumps(_plain(clip.metadata["mfmjt"]), sort_keys=True))
        return element.get("id"), first

    def _item_producer(self, item) -> tuple[str, int]:
        if isinstance(item, otio.schema.Clip):
            return self._clip_producer(item)
        if isinstance(item, otio.schema.Stack):
            return self._stack(item), _frames(item.trimmed_range().start_time, self.rate)
        if isinstance(item, otio.schema.Track):
            return self._playlist(item), _frames(item.trimmed_range().start_time, self.rate)
        raise TimelineError(f"{type(item).__name__} {item.name!r}: not expressible in MLT XML")

    def _playlist(self, track: otio.schema.Track) -> str:
        """A playlist for `track`: pieces [producer or None for blank, in, length], with the
        overlaps of transitions cut out of their neighbours and played in small tractors."""
        pieces: list[list] = []
        transitions: list[tuple[int, otio.schema.Transition]] = []
        for item in track:
            if isinstance(item, otio.schema.Transition):
                transitions.append((len(pieces), item))
                continue
            length = _frames(item.trimmed_range().duration, self.rate)
            if isinstance(item, otio.schema.Gap) or not item.enabled:
                pieces.append([None, 0, length])
            else:
                producer, first = self._item_producer(item)
                pieces.append([producer, first, length])
        built: list[list] = []
        previous_end = 0
        for position, transition in transitions:
            # a transition at either end of the track fades from or to black
            before = pieces[position - 1] if position > 0 else [None, 0, 0]
            after = pieces[position] if position < len(pieces) else [None, 0, 0]
            fade_in = _frames(transition.in_offset, self.rate)
            fade_out = _frames(transition.out_offset, self.rate)
            span = fade_in + fade_out
            a = (before[0], before[1] + before[2] - fade_in)
            b = (after[0], after[1] - fade_in)
            before[2] -= fade_in
            after[1] += fade_out
            after[2] -= fade_out
            built.extend(pieces[previous_end:position])
            built.append([self._transition(a, b, span, track.kind), 0, span])
            previous_end = position
        built.extend(pieces[previous_end:])
        element = self._element("playlist", "playlist")
        _property(element, "shotcut:name", track.name)
        _property(element, "kdenlive:track_name", track.name)
        if track.kind == otio.schema.TrackKind.Audio:
            _property(element, "shotcut:audio", 1)
        for producer, first, length in built:
            if length <= 0:
                continue
            if producer is None:
                ET.SubElement(element, "blank", length=str(length))
            else:
                ET.SubElement(element, "entry", producer=producer, **{
                    "in": str(first), "out": str(first + length - 1)})
        return element.get("id")

    def _transition(self, a: tuple, b: tuple, span: int, kind: str) -> str:
        tracks = []
        for producer, first in (a, b):
            if producer is None:  # a fade from or to a gap
                producer, first = self._black(span), 0
            tracks.append((producer, first))
        element = self._element("tractor", "transition", **{"in": "0", "out": str(span - 1)})
        _property(element, "shotcut:transition", "lumaMix")
        for producer, first in tracks:
            ET.SubElement(element, "track", producer=producer,
                          **{"in": str(first), "out": str(first + span - 1)})
        span_attributes = {"in": "0", "out": str(span - 1)}  # progress runs over the span
        if kind != otio.schema.TrackKind.Audio:
            dissolve = ET.SubElement(element, "transition", **span_attributes)
            for name, value in (("a_track", 0), ("b_track", 1), ("mlt_service", "luma")):
                _property(dissolve, name, value)
        crossfade = ET.SubElement(element, "transition", **span_attributes)
        for name, value in (("a_track", 0), ("b_track", 1), ("mlt_service", "mix"),
                            ("start", -1), ("accepts_blanks", 1)):
            _property(crossfade, name, value)
        return element.get("id")

    def _layer(self, child) -> str:
        """A stack's child as a producer: a track's playlist, or the item itself."""
        if isinstance(child, otio.schema.Track):
            return self._playlist(child)
        return self._item_producer(child)[0]

    def _stack(self, stack: otio.schema.Stack) -> str:
        """A nested stack: a tractor of its tracks, the topmost picture winning, audio summed."""
        layers = [(self._layer(t), t) for t in stack]  # made first: MLT resolves ids in order
        element = self._element("tractor", "tractor")
        self._stack_tracks(element, layers)
        return element.get("id")

    def _stack_tracks(self, tractor: ET.Element, playlists: list, background: Optional[str] = None):
        indices = []
        if background is not None:
            ET.SubElement(tractor, "track", producer=background)
        for producer, child in playlists:
            kind = getattr(child, "kind", otio.schema.TrackKind.Video)
            hide = "both" if not child.enabled else (
                "video" if kind == otio.schema.TrackKind.Audio else "audio")
            ET.SubElement(tractor, "track", producer=producer, hide=hide)
            indices.append((len(indices) + (background is not None), kind, child.enabled))
        # sum the audible tracks into one: the background in the main tractor, the first audible
        # track inside a nested stack
        audible = [index for index, kind, enabled in indices
                   if kind == otio.schema.TrackKind.Audio and enabled]
        into = 0 if background is not None else (audible.pop(0) if audible else 0)
        for index in audible:
            mix = ET.SubElement(tractor, "transition")
            for name, value in (("mlt_service", "mix"), ("a_track", into), ("b_track", index),
                                ("always_active", 1), ("sum", 1)):
                _property(mix, name, value)

    def write(self) -> ET.Element:
        stack = self.timeline.tracks
        duration = _frames(stack.duration(), self.rate)
        video = [t for t in stack if getattr(t, "kind", None) != otio.schema.TrackKind.Audio]
        audio = [t for t in stack if getattr(t, "kind", None) == otio.schema.TrackKind.Audio]
        playlists = [(self._layer(t), t) for t in video + audio]
        # Shotcut opens a document as a project (not as one clip) when it finds its bin
        # playlist and the "shotcut" property on the main tractor
        bin_playlist = ET.SubElement(self.root, "playlist", id="main_bin")
        _property(bin_playlist, "xml_retain", 1)
        background = self._black(duration)
        background_list = self._element("playlist", "background")
        ET.SubElement(background_list, "entry", producer=background,
                      **{"in": "0", "out": str(max(duration, 1) - 1)})
        tractor = self._element("tractor", "tractor", title=self.timeline.name or "timeline",
                                **{"in": "0", "out": str(max(duration, 1) - 1)})
        _property(tractor, "shotcut", 1)
        start = self.timeline.global_start_time
        if start is not None:
            _property(tractor, "mfmjt:start_timecode", otio.opentime.to_timecode(
                start, self.rate))
        self._markers(tractor)
        self._stack_tracks(tractor, playlists, background=background_list.get("id"))
        return self.root

    def _markers(self, tractor: ET.Element) -> None:
        markers = list(self.timeline.tracks.markers)
        if not markers:
            return
        group = ET.SubElement(tractor, "properties", name="shotcut:markers")
        for number, marker in enumerate(markers):
            entry = ET.SubElement(group, "properties", name=str(number))
            marked = marker.marked_range
            _property(entry, "text", marker.name)
            _property(entry, "start", _frames(marked.start_time, self.rate))
            _property(entry, "end", _frames(marked.end_time_exclusive(), self.rate))
            _property(entry, "color", MARKER_COLOURS.get(str(marker.color).upper(), "#00ff00"))


def to_mlt_xml(timeline: otio.schema.Timeline, *, width: int = 1920, height: int = 1080) -> str:
    """The MLT XML document for `timeline` (the picture size goes in the profile)."""
    root = _Writer(timeline, width, height).write()
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["to_mlt_xml"]
