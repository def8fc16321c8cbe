"""The panel's main window: open a movie or a timeline, choose a range, ask for a sound, audition
the takes against the picture, deliver them. Heavy work never runs on the UI thread: frames on
the frame loader's thread, generation on the runner's (through the engine client), loading and
writing in small worker threads; their results come back as queued signals."""
from __future__ import annotations

import os
import random
import shutil
import threading
import time
import traceback
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QImage, QKeySequence
from PyQt6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog,
                             QFormLayout, QGroupBox, QHBoxLayout, QInputDialog, QLabel, QLineEdit,
                             QMainWindow, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton,
                             QSpinBox, QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                             QWidget)

from ui.document import Document, open_document
from ui.generation import GenerationRunner
from ui.player import AudioPlayer
from ui.settings import PanelSettings
from ui.takes import TRASH, TakeItem, TakeList, restore_takes, write_sidecar
from ui.viewer import FrameLoader, RangeStrip, Viewer, thumbnail_job

OPEN_FILTER = ("Movies and timelines (*.mp4 *.mov *.mkv *.avi *.mxf *.webm *.m4v *.otio *.otioz "
               "*.otiod *.xml *.fcpxml *.edl *.aaf *.mlt);;All files (*)")
TICK_MS = 40
EDL_RATES = ["23.976", "24", "25", "29.97", "30", "48", "50", "59.94", "60"]


class _Relay(QObject):
    """Signals that worker threads emit; connected to the window, so they arrive queued."""
    thumbnails = pyqtSignal(object, list)   # document path, images
    delivered = pyqtSignal(str, str)        # what, path
    problem = pyqtSignal(str, str)          # message, details
    takes_loaded = pyqtSignal(object, list, dict)  # (document, save), TakeItems, placements


class MainWindow(QMainWindow):
    def __init__(self, runner: GenerationRunner, *, settings: Optional[PanelSettings] = None,
                 player: Optional[AudioPlayer] = None):
        super().__init__()
        from ui.generation import preload
        preload()
        self.setWindowTitle("MF-MJT Foley")
        self.resize(1280, 780)
        self.setAcceptDrops(True)
        self.settings = settings or PanelSettings()
        self.runner = runner
        self.player = player or AudioPlayer()
        self.document: Optional[Document] = None
        self.playhead = Fraction(0)
        self.mark_in: Optional[Fraction] = None
        self.mark_out: Optional[Fraction] = None
        self.selection_label = "whole"  # what a timeline selection was made from
        self.timeline_selection = None  # mfmjt_plugin Selection for timelines
        self.search_folder: Optional[Path] = None  # relink: where offline media is looked for
        self.plan = None  # the last timeline FoleyPlan (every run's plan writes the same document)
        self.placements: dict[Path, object] = {}  # take file -> its timeline Placement
        self.item_plans: dict[Path, object] = {}  # take file -> the plan of the run that made it
        self._plans: dict[int, object] = {}  # run number -> its plan (set by the worker)
        self._my_run: Optional[int] = None  # the run whose results this document takes
        self.errors: list[tuple[str, str]] = []  # every message shown (tests read it)
        self.last_delivery: Optional[Path] = None
        self._shuttle = 0  # -1 back, 0 stopped, +1 forward (picture only)
        self._shuttle_clock = 0.0
        self._playing_take: Optional[TakeItem] = None
        self._ab_previous: Optional[TakeItem] = None
        self.relay = _Relay()
        self.frames = FrameLoader(parent=self)
        self._build()
        self._wire()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self._restore_request()

    # ================================================================= layout
    def _build(self) -> None:
        self.viewer = Viewer()
        self.viewer.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.strip = RangeStrip()
        self.timecode = QLabel("00:00:00:00")
        self.timecode.setObjectName("timecode")
        self.range_label = QLabel("in –  out –")
        transport = QHBoxLayout()
        transport.addWidget(self.timecode)
        transport.addSpacing(12)
        transport.addWidget(self.range_label, 1)
        for text, tip, slot in (("I", "Mark in (I)", self.set_in), ("O", "Mark out (O)", self.set_out),
                                ("◀◀", "Back (J)", lambda: self.shuttle(-1)),
                                ("■", "Stop (K)", self.stop), ("▶", "Play (L / Space)", self.play),
                                ("Clear", "Clear in / out", self.clear_range)):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(slot)
            transport.addWidget(button)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Timeline", "in", "out"])
        self.sequence_box = QComboBox()
        self.sequence_box.setToolTip("Sequence")
        timeline_box = QGroupBox("Timeline")
        tl = QVBoxLayout(timeline_box)
        tl.addWidget(self.sequence_box)
        tl.addWidget(self.tree)
        self.timeline_box = timeline_box
        timeline_box.hide()

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(4, 4, 4, 4)
        ll.addWidget(self.viewer, 1)
        ll.addWidget(self.strip)
        ll.addLayout(transport)
        ll.addWidget(timeline_box)

        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("what to hear (optional): e.g. footsteps on gravel")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("what not to hear (optional)")
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 20.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setSpecialValueText("bundle default")
        self.mode = QComboBox()
        self.mode.addItems(["bundle default", "scaled", "standard", "none"])
        self.steps = QSpinBox()
        self.steps.setRange(0, 100)
        self.steps.setSpecialValueText("bundle default")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed_lock = QCheckBox("lock")
        self.seed_lock.setToolTip("Locked: the same seed every time; else a new one per run")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_lock)
        self.takes = QSpinBox()
        self.takes.setRange(1, 8)
        self.best_of = QSpinBox()
        self.best_of.setRange(0, 16)
        self.best_of.setSpecialValueText("off")
        self.best_of.setToolTip("Generate N candidates and keep the takes best in sync")
        self.bundle = QComboBox()
        self.bundle.setEditable(False)
        self.bundle_licence = QLabel()
        self.bundle_licence.setWordWrap(True)
        form_box = QGroupBox("Request")
        form = QFormLayout(form_box)
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)
        form.addRow("Guidance", self.guidance)
        form.addRow("Mode", self.mode)
        form.addRow("Steps", self.steps)
        form.addRow("Seed", seed_row)
        form.addRow("Takes", self.takes)
        form.addRow("Best of", self.best_of)
        form.addRow("Model", self.bundle)
        form.addRow("", self.bundle_licence)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generate")
        self.generate_button.setToolTip("Generate takes for the range (Ctrl+G)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.stage = QLabel("")

        self.take_list = TakeList()
        self.insert_button = QPushButton("Insert into timeline")
        self.export_button = QPushButton("Export WAVs…")
        self.ab_button = QPushButton("A/B")
        self.ab_button.setToolTip("Switch between the two takes played last, at the same moment")
        deliver = QHBoxLayout()
        for button in (self.ab_button, self.export_button, self.insert_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            deliver.addWidget(button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 4, 4, 4)
        rl.addWidget(form_box)
        rl.addLayout(buttons)
        rl.addWidget(self.progress)
        rl.addWidget(self.stage)
        rl.addWidget(QLabel("Takes"))
        rl.addWidget(self.take_list, 1)
        rl.addLayout(deliver)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([780, 500])
        self.setCentralWidget(splitter)
        self.engine_label = QLabel("engine: starting…")
        self.memory_label = QLabel("")
        self.statusBar().addPermanentWidget(self.engine_label)
        self.statusBar().addPermanentWidget(self.memory_label)

        menu = self.menuBar().addMenu("&File")
        self.recent_menu = None
        for text, key, slot in (("&Open…", QKeySequence.StandardKey.Open, self.open_dialog),
                                ("&Relink offline media…", None, self.relink_dialog),
                                ("&Export WAVs…", None, self.export_dialog),
                                ("&Insert into timeline", "Ctrl+Return", self.insert_into_timeline),
                                ("&Generate", "Ctrl+G", self.generate)):
            action = QAction(text, self)
            if key is not None:
                action.setShortcut(QKeySequence(key))
            action.triggered.connect(slot)
            menu.addAction(action)
        self.recent_menu = menu.addMenu("Open &recent")
        self._fill_recent()
        self._fill_bundles()

    def _wire(self) -> None:
        self.frames.ready.connect(self._frame_ready)
        self.frames.missing.connect(self._frame_missing)
        self.strip.seek.connect(lambda s: self.seek(Fraction(s).limit_denominator(10 ** 6)))
        self.strip.handle_moved.connect(self._handle_moved)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.insert_button.clicked.connect(self.insert_into_timeline)
        self.export_button.clicked.connect(self.export_dialog)
        self.ab_button.clicked.connect(self.a_b)
        self.runner.engine_ready.connect(self._engine_ready)
        self.runner.progress.connect(self._progress)
        self.runner.job_done.connect(self._job_done)
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(self.show_error)
        self.player.finished.connect(self._player_finished)
        self.relay.thumbnails.connect(self._thumbnails)
        self.relay.delivered.connect(self._delivered)
        self.relay.problem.connect(self.show_error)
        self.relay.takes_loaded.connect(self._takes_loaded)
        self.tree.itemSelectionChanged.connect(self._tree_selected)
        self.sequence_box.activated.connect(self._sequence_chosen)
        self.bundle.currentIndexChanged.connect(self._bundle_chosen)
        for widget in (self.tree, self.take_list, self.viewer, self.strip):
            widget.installEventFilter(self)  # the transport keys work wherever focus is

    # ================================================================= documents
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a movie or a timeline", "", OPEN_FILTER)
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path, *, sequence: Optional[str] = None,
                  rate: Optional[float] = None) -> bool:
        from engine.errors import UserError
        try:
            document = open_document(path, sequence=sequence, rate=rate)
        except UserError as err:
            if err.field == "rate" and rate is None:  # an EDL: its frame rate is not in it
                chosen, ok = QInputDialog.getItem(self, "Frame rate", f"{Path(path).name} does "
                                                  f"not say its frame rate; it counts at", EDL_RATES,
                                                  2, False)
                return ok and self.open_path(path, sequence=sequence, rate=float(chosen))
            self.show_error(str(err).splitlines()[0], traceback.format_exc())
            return False
        except (OSError, ValueError) as err:
            self.show_error(str(err).splitlines()[0], traceback.format_exc())
            return False
        if self.runner.busy:  # its takes belong to the document being left
            self.runner.cancel()
        self._my_run = None
        self.stop()
        self.document = document
        self.playhead, self.mark_in, self.mark_out = Fraction(0), None, None
        self.timeline_selection, self.plan, self.placements = None, None, {}
        self.item_plans = {}
        self.setWindowTitle(f"MF-MJT Foley — {path.name}")
        self.settings.add_recent(path)
        self._fill_recent()
        marks = [(float(c.record_in), float(c.record_out), c.name) for c in document.clips]
        self.strip.set_document(float(document.duration), [], marks)
        if document.kind == "movie" and document.has_picture:
            thumbnail_job(path, 12, lambda images: self._emit(self.relay.thumbnails, path, images))
        self._fill_tree()
        self.insert_button.setEnabled(document.kind == "timeline")
        self.take_list.clear_all()
        self._load_takes(lambda: restore_takes(self.takes_folder(), ""))  # the document's folder
        if not document.has_picture:
            self.viewer.show_message(f"{path.name}: no picture (audio only); takes follow the "
                                     f"prompt alone")
        self._moved()
        self.viewer.setFocus()
        return True

    @staticmethod
    def _emit(signal, *args) -> None:
        """From a worker thread: the window may have closed meanwhile (then nothing to show)."""
        try:
            signal.emit(*args)
        except RuntimeError:
            pass

    def takes_folder(self) -> Path:
        doc = self.document
        if doc is None:
            return Path.cwd()
        return doc.path.parent / f"{doc.path.stem}_foley_media" if doc.kind == "timeline" \
            else doc.path.parent / f"{doc.path.stem}_foley_takes"

    def _fill_tree(self) -> None:
        self.tree.clear()
        doc = self.document
        self.timeline_box.setVisible(doc is not None and doc.kind == "timeline")
        if doc is None or doc.kind != "timeline":
            return
        self.sequence_box.clear()
        self.sequence_box.addItems(doc.sequences)
        self.sequence_box.setCurrentIndex(int(doc.sequence) - 1)
        tracks = QTreeWidgetItem(self.tree, ["Video tracks"])
        for number in range(1, doc.tracks + 1):
            node = QTreeWidgetItem(tracks, [f"V{number}"])
            node.setData(0, Qt.ItemDataRole.UserRole, ("track", number))
            for clip in (c for c in doc.clips if c.track == number):
                child = QTreeWidgetItem(node, [clip.name, doc.timecode(clip.record_in),
                                               doc.timecode(clip.record_out)])
                child.setData(0, Qt.ItemDataRole.UserRole, ("clip", clip.number))
        if doc.markers:
            markers = QTreeWidgetItem(self.tree, ["Markers"])
            for marker in doc.markers:
                child = QTreeWidgetItem(markers, [f"{marker.name} ({marker.colour.lower()})",
                                                  doc.timecode(marker.record_in),
                                                  doc.timecode(marker.record_out)])
                child.setData(0, Qt.ItemDataRole.UserRole, ("marker", marker.name))
        self.tree.expandAll()

    def _tree_selected(self) -> None:
        from mfmjt_plugin.timeline.selection import Selection
        chosen = self.tree.selectedItems()
        data = chosen[0].data(0, Qt.ItemDataRole.UserRole) if chosen else None
        doc = self.document
        if not data or doc is None:
            return
        kind, value = data
        self.timeline_selection = Selection(**{kind: str(value) if kind == "clip" else value})
        self.selection_label = f"{kind} {value}"
        if kind == "clip":
            clip = next(c for c in doc.clips if c.number == value)
            self.mark_in, self.mark_out = clip.record_in, clip.record_out
        elif kind == "marker":
            marker = next(m for m in doc.markers if m.name == value)
            self.mark_in, self.mark_out = marker.record_in, marker.record_out
        else:
            clips = [c for c in doc.clips if c.track == value]
            self.mark_in = min(c.record_in for c in clips) if clips else None
            self.mark_out = max(c.record_out for c in clips) if clips else None
        if self.mark_in is not None:
            self.seek(self.mark_in)
        self._moved()

    def _sequence_chosen(self, index: int) -> None:
        doc = self.document
        if doc is not None and doc.kind == "timeline" and 0 <= index < len(doc.sequences) \
                and str(index + 1) != doc.sequence:
            self.open_path(doc.path, sequence=str(index + 1), rate=doc.rate_given)

    def _fill_recent(self) -> None:
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        for path in self.settings.recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(Path(p)))

    def _fill_bundles(self) -> None:
        """The starter model and every bundle in the weight registry's folder, with licences."""
        from engine.paths import data_dir
        self.bundle.blockSignals(True)
        self.bundle.clear()
        self.bundle.addItem("starter", "starter")
        for manifest in sorted((data_dir() / "bundles").glob("*/manifest.json")):
            self.bundle.addItem(manifest.parent.name, str(manifest.parent))
        self.bundle.addItem("Other folder…", None)
        self.bundle.blockSignals(False)
        self._bundle_chosen()

    def choose_bundle(self, name: str) -> None:
        """Select `name` (a registered name, `starter` or a bundle folder) in the picker."""
        for index in range(self.bundle.count()):
            if self.bundle.itemData(index) == name or self.bundle.itemText(index) == name:
                self.bundle.setCurrentIndex(index)
                return
        self.bundle.insertItem(self.bundle.count() - 1, Path(name).name, str(name))
        self.bundle.setCurrentIndex(self.bundle.count() - 2)

    def _bundle_chosen(self, *_args) -> None:
        from engine.bundles.resolve import resolve_bundle
        if self.bundle.currentData() is None and self.bundle.currentText() == "Other folder…":
            folder = QFileDialog.getExistingDirectory(self, "A model bundle folder")
            self.bundle.blockSignals(True)
            self.bundle.setCurrentIndex(0)
            self.bundle.blockSignals(False)
            if folder:
                self.choose_bundle(folder)
            return
        name = self.bundle.currentData() or "starter"
        try:
            import json
            manifest = json.loads((resolve_bundle(name) / "manifest.json").read_text())
            licence = manifest.get("licence")
            text = licence.get("name", str(licence)) if isinstance(licence, dict) else str(licence)
        except Exception as err:  # a damaged bundle: said under the picker, chosen at Generate
            text = f"cannot read its manifest ({str(err).splitlines()[0]})"
        self.bundle_licence.setText(f"licence: {text}")

    # ================================================================= playhead and range
    def seek(self, seconds: Fraction) -> None:
        doc = self.document
        if doc is None:
            return
        self.playhead = doc.snap(seconds)
        self._moved()

    def step(self, frames: int) -> None:
        if self.document is not None:
            self.seek(self.playhead + Fraction(frames) / self.document.rate)

    def set_in(self) -> None:
        if self.document is not None:
            self.mark_in = self.playhead
            self.timeline_selection = None
            self._moved()

    def set_out(self) -> None:
        """Out is exclusive: the frame under the playhead is the last one in the range."""
        if self.document is not None:
            self.mark_out = self.playhead + 1 / self.document.rate
            self.timeline_selection = None
            self._moved()

    def _handle_moved(self, which: str, seconds: float) -> None:
        """An in / out handle dragged on the strip: snapped to a frame edge."""
        if self.document is None:
            return
        edge = self.document.snap(Fraction(seconds).limit_denominator(10 ** 6))
        if which == "in":
            self.mark_in = edge
        else:
            self.mark_out = edge
        self.timeline_selection = None
        self._moved()

    def clear_range(self) -> None:
        self.mark_in = self.mark_out = None
        self.timeline_selection = None
        self._moved()

    def chosen_range(self) -> tuple[Fraction, Fraction]:
        doc = self.document
        start = self.mark_in if self.mark_in is not None else Fraction(0)
        end = self.mark_out if self.mark_out is not None else doc.duration
        return start, end

    def _moved(self) -> None:
        doc = self.document
        if doc is None:
            return
        self.timecode.setText(doc.timecode(self.playhead))
        start, end = self.chosen_range()
        self.range_label.setText(f"in {doc.timecode(start)}   out {doc.timecode(end)}   "
                                 f"({float(end - start):.2f} s)")
        self.strip.playhead = float(self.playhead)
        self.strip.range = (None if self.mark_in is None else float(self.mark_in),
                            None if self.mark_out is None else float(self.mark_out))
        self.strip.update()
        if doc.has_picture:
            try:
                source = doc.picture_source(self.playhead)
            except Exception:
                source = None
            self.frames.request(self.playhead, source)

    def _frame_ready(self, key, image: QImage) -> None:
        if key == self.playhead or self._shuttle or self.player.playing:
            self.viewer.show_image(image)

    def _frame_missing(self, key, reason: str) -> None:
        if key == self.playhead:
            self.viewer.show_message(f"{reason} at {self.document.timecode(key)}"
                                     if self.document else reason)

    def _thumbnails(self, path, images: list) -> None:
        if self.document is not None and self.document.path == path:
            self.strip.thumbnails = images
            self.strip.update()

    # ================================================================= keys and transport
    def eventFilter(self, watched, event) -> bool:
        """The transport keys on the lists, the viewer and the strip (a list would take Space
        and letters for itself); text fields and number boxes keep their keys."""
        if event.type() == QEvent.Type.KeyPress and not isinstance(
                watched, (QLineEdit, QAbstractSpinBox, QPlainTextEdit)):
            if self.transport_key(event):
                return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event) -> None:
        if not self.transport_key(event):
            super().keyPressEvent(event)

    def transport_key(self, event) -> bool:
        key = event.key()
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False  # Ctrl+O and friends are the menus'
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and isinstance(self.focusWidget(),
                                                                      QTreeWidget):
            return False  # the tree folds and unfolds with them
        actions: dict[int, Callable[[], None]] = {
            Qt.Key.Key_I: self.set_in, Qt.Key.Key_O: self.set_out,
            Qt.Key.Key_J: lambda: self.shuttle(-1), Qt.Key.Key_K: self.stop,
            Qt.Key.Key_L: self.play, Qt.Key.Key_Space: self.toggle_play,
            Qt.Key.Key_Left: lambda: self.step(-1), Qt.Key.Key_Right: lambda: self.step(1),
            Qt.Key.Key_Home: lambda: self.seek(Fraction(0)),
            Qt.Key.Key_End: lambda: self.seek(self.document.duration) if self.document else None}
        if key not in actions:
            return False
        actions[key]()
        event.accept()
        return True

    def toggle_play(self) -> None:
        if self._shuttle or self.player.playing:
            self.stop()
        else:
            self.play()

    def play(self) -> None:
        """Play the selected take with the picture when there is one; else the picture alone."""
        chosen = self.take_list.selected_items()
        if chosen and chosen[0].samples is not None:
            self.play_take(chosen[0])
        else:
            self.shuttle(1)

    def shuttle(self, direction: int) -> None:
        if self.document is None:
            return
        self.player.stop()
        self._shuttle, self._shuttle_clock = direction, time.monotonic()

    def stop(self) -> None:
        self._shuttle = 0
        self.player.stop()
        self._set_playing(None)

    def play_take(self, item: TakeItem) -> None:
        """Play a take from the playhead if it is inside the take, else from the take's start;
        the viewer follows the audio clock."""
        if self._playing_take is item and self.player.playing:
            self.stop()
            return
        if item.samples is None:
            self.show_error(f"{item.path.name} could not be read; regenerate it", "")
            return
        self._shuttle = 0
        offset = float(self.playhead) - item.start
        length = len(item.samples) / item.rate
        offset = offset if 0 <= offset < length else 0.0
        if self._playing_take is not None and self._playing_take is not item:
            self._ab_previous = self._playing_take
        try:
            self.player.play(item.samples, item.rate, start=offset, what=str(item.path))
        except Exception as err:  # no sound device, PortAudio missing, device busy
            self.player.stop()
            self.show_error(f"cannot play {item.path.name}: {str(err).splitlines()[0]}; check "
                            f"the sound output (mfmjt doctor)", traceback.format_exc())
            return
        self._set_playing(item)

    def a_b(self) -> None:
        """Hear the other of the last two takes from the same moment."""
        other = self._ab_previous
        if other is None or other not in self.take_list.items():
            return
        current = self._playing_take
        if current is not None and self.player.playing:
            self.playhead = Fraction(current.start + self.player.position()).limit_denominator(10 ** 6)
        self._playing_take = None
        self.play_take(other)
        self._ab_previous = current if current is not None else self._ab_previous

    def _set_playing(self, item: Optional[TakeItem]) -> None:
        self._playing_take = item
        for row in self.take_list.rows:
            row.set_playing(row.item is item)
            row.view.set_position(None)

    def _player_finished(self) -> None:
        """The take playing reached its end (the player drops stopped streams' reports)."""
        self.player.stop()
        self._set_playing(None)

    def _tick(self) -> None:
        """40 ms: the picture follows the audio clock, or the shuttle's wall clock."""
        if self.player.playing and self._playing_take is not None:
            heard = self.player.position()
            row = self.take_list.row_of(self._playing_take)
            if row is not None:
                row.view.set_position(heard)
            self.seek(Fraction(self._playing_take.start + heard).limit_denominator(10 ** 6))
        elif self._shuttle and self.document is not None:
            now = time.monotonic()
            moved = Fraction(now - self._shuttle_clock).limit_denominator(10 ** 4) * self._shuttle
            self._shuttle_clock = now
            target = self.playhead + moved
            if target < 0 or target >= self.document.duration:
                self._shuttle = 0
            self.seek(max(Fraction(0), min(target, self.document.duration)))
        self.memory_label.setText(memory_text())

    # ================================================================= requests
    def request_values(self) -> dict:
        seed = self.seed.value()
        if not self.seed_lock.isChecked():
            seed = random.randrange(0, 2 ** 31)
            self.seed.setValue(seed)
        values = {"prompt": self.prompt.text().strip(),
                  "negative_prompt": self.negative.text().strip(),
                  "guidance": self.guidance.value() or None,
                  "mode": None if self.mode.currentIndex() == 0 else self.mode.currentText(),
                  "steps": self.steps.value() or None, "seed": seed,
                  "takes": self.takes.value(), "best_of": self.best_of.value() or None}
        self.settings.save_request({**values, "seed_locked": self.seed_lock.isChecked(),
                                    "bundle": self.bundle.currentData()})
        return values

    def _restore_request(self) -> None:
        saved = self.settings.request()
        self.prompt.setText(str(saved.get("prompt", "")))
        self.negative.setText(str(saved.get("negative_prompt", "")))
        for box, key in ((self.guidance, "guidance"), (self.steps, "steps")):
            try:
                box.setValue(float(saved[key]) if box is self.guidance else int(saved[key]))
            except (KeyError, TypeError, ValueError):
                pass
        if saved.get("mode") in ("scaled", "standard", "none"):
            self.mode.setCurrentText(saved["mode"])
        if saved.get("bundle"):
            self.choose_bundle(str(saved["bundle"]))
        for box, key in ((self.seed, "seed"), (self.takes, "takes"), (self.best_of, "best_of")):
            try:
                box.setValue(int(saved[key]))
            except (KeyError, TypeError, ValueError):
                pass
        self.seed_lock.setChecked(str(saved.get("seed_locked", "false")).lower() == "true")

    def generate(self, *, seed: Optional[int] = None, takes: Optional[int] = None) -> bool:
        """Start generating for the chosen range; False (and a message) when it cannot."""
        doc = self.document
        if doc is None:
            self.show_error("Open a movie or a timeline first (File ▸ Open)", "")
            return False
        if self.runner.busy:
            self.show_error("A generation is running; wait for it or press Cancel", "")
            return False
        start, end = self.chosen_range()
        if end <= start:
            self.show_error(f"The range {doc.timecode(start)}–{doc.timecode(end)} is empty; "
                            f"mark an out point after the in point", "")
            return False
        values = self.request_values()
        if seed is not None:
            values["seed"] = seed
        if takes is not None:
            values["takes"], values["best_of"] = takes, None
        if doc.kind == "timeline":
            prepare = self._timeline_jobs(values, start, end)
        else:
            prepare = self._movie_jobs(values, start, end)
        return self._start(prepare)

    def _start(self, prepare) -> bool:
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.stage.setText("starting…")
        self._folder_existed = self.takes_folder().exists()
        self._my_run = self.runner.start(prepare, bundle=self.bundle.currentData() or "starter")
        return True

    def regenerate(self, item: TakeItem) -> bool:
        """One new take of the same range with a new seed (the picture's features come from the
        engine's cache): a movie take's range again, a timeline take's segment again."""
        doc = self.document
        if doc is None or self.runner.busy:
            self.show_error("A generation is running; wait for it or press Cancel", "")
            return False
        seed = random.randrange(0, 2 ** 31)
        if doc.kind == "timeline":
            plan = self.item_plans.get(item.path)
            if plan is None:
                self.show_error(f"{item.name} was made before this session; select its clip "
                                f"and Generate", "")
                return False
            return self._start(self._segment_again(plan, item.segment, seed))
        start = Fraction(item.start).limit_denominator(10 ** 6)
        end = start + Fraction(len(item.samples), item.rate) if item.samples is not None \
            else doc.duration
        values = {**self.request_values(), "seed": seed, "takes": 1, "best_of": None}
        return self._start(self._movie_jobs(values, start, min(end, doc.duration)))

    def _segment_again(self, plan, index: int, seed: int):
        """A job making one take of `plan`'s segment `index` with `seed`."""
        from dataclasses import replace

        from engine.jobs import service_body
        settings = replace(plan.job.settings, takes=1, best_of=None,
                           seed=(seed - 1000 * index) % 2 ** 64)
        again = replace(plan, job=replace(plan.job, settings=settings))
        self._job_starts = {0: None}

        def prepare():
            run = self.runner.run
            self._plans[run] = again

            def make():
                request = again.request(index)
                self._job_starts[0] = (again.segments[index].record_range.start_time.to_seconds()
                                       - float(request.head_handle), index)
                return service_body(request)
            return [make]
        return prepare

    def _movie_jobs(self, values: dict, start: Fraction, end: Fraction):
        doc, out = self.document, self.takes_folder()
        body = {"media": str(doc.path.resolve()), "out": str(out.resolve()),
                "start": float(start), "end": float(end), "preview": False,
                **{k: v for k, v in values.items() if v is not None and v != ""}}
        self._job_starts = {0: (float(start), 0)}

        def prepare():
            out.mkdir(parents=True, exist_ok=True)
            return [lambda: body]
        return prepare

    def _timeline_jobs(self, values: dict, start: Fraction, end: Fraction):
        from engine.jobs import service_body
        from mfmjt_plugin.timeline.foley import FoleySettings, plan_foley
        from mfmjt_plugin.timeline.selection import Selection
        doc = self.document
        selection = self.timeline_selection
        if selection is None:
            whole = self.mark_in is None and self.mark_out is None
            selection = Selection() if whole else Selection(tc_in=doc.timecode(start),
                                                            tc_out=doc.timecode(end))
        settings = FoleySettings(prompt=values["prompt"], negative_prompt=values["negative_prompt"],
                                 takes=values["takes"], best_of=values["best_of"],
                                 guidance=values["guidance"], mode=values["mode"],
                                 steps=values["steps"], seed=values["seed"],
                                 bundle=self.bundle.currentData() or "starter")
        search, rate = self.search_folder, doc.rate_given
        self._job_starts = {}

        def prepare():
            plan = plan_foley(doc.path, selection, settings, sequence=doc.sequence, rate=rate,
                              search=search)
            self._plans[self.runner.run] = plan

            def body_of(index: int):
                def make():
                    request = plan.request(index)
                    segment = plan.segments[index]
                    self._job_starts[index] = (segment.record_range.start_time.to_seconds()
                                               - float(request.head_handle), index)
                    return service_body(request)
                return make
            return [body_of(i) for i in range(len(plan.segments))]
        return prepare

    def cancel(self) -> None:
        self.stage.setText("cancelling…")
        self.runner.cancel()

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, total))
        self.stage.setText(stage)

    def _job_done(self, run: int, index: int, result: dict) -> None:
        if run != self._my_run:
            return  # a run the panel left (another document was opened)
        start, segment = getattr(self, "_job_starts", {}).get(index) or (0.0, index)
        plan = self._plans.get(run)
        if plan is not None:
            self.plan = plan
        items = [TakeItem(path=Path(d["path"]), seed=d.get("seed"), sync_score=d.get("sync_score"),
                          segment=segment, take=int(d.get("take", 1)), start=float(start))
                 for d in result.get("take_details", [])]
        for item in items:
            if plan is not None:
                self.item_plans[item.path] = plan

        def placements() -> dict:  # on the loader thread: it probes the movie
            if plan is None:
                return {}
            from engine.jobs import TakesReport
            placed, _ = plan.placements(segment, TakesReport.from_json(result))
            return {p.wav: p for p in placed}
        self._load_takes(lambda: items, save=True, placements=placements)

    def _load_takes(self, listing, *, save: bool = False, placements=None) -> None:
        """List the takes (`listing()`), read their samples and draw their spectrograms on a
        worker thread; the rows appear when they are ready (`_takes_loaded`)."""
        document = self.document.path if self.document is not None else None

        def run():
            try:
                items = listing()
                placed = placements() if placements is not None else {}
            except Exception as err:
                self._emit(self.relay.problem, f"cannot list the takes: "
                                               f"{str(err).splitlines()[0]}", traceback.format_exc())
                items, placed = [], {}
            for item in items:
                try:
                    item.load()
                except Exception as err:  # listed without its picture of the sound
                    self._emit(self.relay.problem, f"{item.path.name}: cannot read the take "
                                                   f"({str(err).splitlines()[0]})", "")
            self._emit(self.relay.takes_loaded, (document, save), items, placed)
        self._loaders = getattr(self, "_loaders", 0) + 1
        threading.Thread(target=run, name="mfmjt-takes", daemon=True).start()

    def _takes_loaded(self, key, items: list, placements: dict) -> None:
        self._loaders -= 1
        document, save = key
        if self.document is None or self.document.path != document:
            return  # another document was opened meanwhile
        self.placements.update(placements)
        for item in items:
            self._add_take(item)
        if save:
            self._save_sidecar()

    def _save_sidecar(self) -> None:
        try:
            write_sidecar(self.takes_folder(), self.take_list.items())
        except OSError as err:  # favourites are a convenience; the takes themselves are safe
            self.show_error(f"cannot remember the favourites in {self.takes_folder()}: "
                            f"{err.strerror or err}", traceback.format_exc())

    @property
    def loading_takes(self) -> bool:
        return getattr(self, "_loaders", 0) > 0

    def _finished(self, state: str) -> None:
        folder = self.takes_folder()
        if state != "done" and not getattr(self, "_folder_existed", True) and folder.is_dir() \
                and not any(folder.iterdir()):
            folder.rmdir()  # made for this run, which left nothing: nothing is left behind
        self.generate_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if state == "done" else 0)
        self.stage.setText({"done": "done", "cancelled": "cancelled: nothing half-written",
                            "failed": "failed (see the message)"}.get(state, state))

    def _engine_ready(self, info: dict) -> None:
        bundle = Path(str(info.get("bundle", ""))).name
        self.engine_label.setText(f"engine: {info.get('device', '?')} · {bundle}")

    # ================================================================= takes
    def _add_take(self, item: TakeItem) -> None:
        row = self.take_list.add(item)
        row.play.connect(self.play_take)
        row.favourite.connect(self.toggle_favourite)
        row.regenerate.connect(self.regenerate)
        row.delete.connect(self.delete_take)
        row.rename.connect(self.rename_dialog)

    def toggle_favourite(self, item: TakeItem) -> None:
        item.favourite = not item.favourite
        row = self.take_list.row_of(item)
        if row is not None:
            row.refresh()
        self._save_sidecar()

    def delete_take(self, item: TakeItem) -> None:
        """Moved to the takes folder's .deleted/ (recoverable), never destroyed."""
        if self._playing_take is item:
            self.stop()
        from engine.naming import next_version_path
        trash = item.path.parent / TRASH
        try:
            trash.mkdir(exist_ok=True)
            target = trash / item.path.name
            if target.exists():
                target = next_version_path(trash, item.path.stem)
            os.replace(item.path, target)
        except OSError as err:
            self.show_error(f"cannot move {item.path.name} to {trash}: {err.strerror or err}",
                            traceback.format_exc())
            return
        self.take_list.remove(item)
        self.placements.pop(item.path, None)
        self._save_sidecar()

    def rename_dialog(self, item: TakeItem) -> None:
        name, ok = QInputDialog.getText(self, "Rename take", "New name", text=item.name)
        if ok:
            self.rename_take(item, name)

    def rename_take(self, item: TakeItem, name: str) -> bool:
        from ui.takes import SAFE_NAME
        name = name.strip().removesuffix(".wav")
        if not SAFE_NAME.match(name) or name.startswith("."):
            self.show_error(f"{name!r} cannot be a file name; use letters, digits, spaces, - or _", "")
            return False
        target = item.path.with_name(f"{name}.wav")
        if target.exists():
            self.show_error(f"{target.name} already exists in {target.parent}; choose another name", "")
            return False
        try:
            os.replace(item.path, target)
        except OSError as err:
            self.show_error(f"cannot rename {item.path.name}: {err.strerror or err}",
                            traceback.format_exc())
            return False
        placement = self.placements.pop(item.path, None)
        plan = self.item_plans.pop(item.path, None)
        if plan is not None:
            self.item_plans[target] = plan
        if placement is not None:
            from dataclasses import replace
            self.placements[target] = replace(placement, wav=target)
        item.path = target
        row = self.take_list.row_of(item)
        if row is not None:
            row.refresh()
        self._save_sidecar()
        return True

    # ================================================================= delivery
    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the chosen takes to")
        if folder:
            self.export_takes(Path(folder))

    def export_takes(self, folder: Path) -> Optional[threading.Thread]:
        """Copy the chosen takes into `folder` (new versioned names where one exists), atomically,
        on a worker thread; `delivered` reports each, `problem` a failure (nothing half-written)."""
        chosen = self.take_list.chosen()
        if not chosen:
            self.show_error("No takes to export; generate some first", "")
            return None

        def run():
            from engine.atomic import atomic_target
            from engine.naming import next_version_path
            written: list[Path] = []
            try:
                for item in chosen:
                    target = folder / item.path.name
                    if target.exists():
                        target = next_version_path(folder, item.path.stem)
                    with atomic_target(target) as tmp:
                        shutil.copyfile(item.path, tmp)
                    written.append(target)
                self._emit(self.relay.delivered, "exported", ", ".join(p.name for p in written))
            except OSError as err:
                for path in written:
                    path.unlink(missing_ok=True)
                self._emit(self.relay.problem, f"could not export to {folder}: {err.strerror or err}; "
                                        f"nothing was left there (free some space or choose "
                                        f"another folder)", traceback.format_exc())
        thread = threading.Thread(target=run, name="mfmjt-export", daemon=True)
        thread.start()
        return thread

    def insert_into_timeline(self) -> Optional[threading.Thread]:
        """The chosen takes into a new version of the timeline (the bridge's naming, tracks and
        metadata, as `mfmjt timeline foley` writes them); the source is never touched."""
        doc = self.document
        if doc is None or doc.kind != "timeline":
            self.show_error("Insert needs a timeline; open one (a movie's takes are exported as "
                            "WAVs)", "")
            return None
        chosen = [t for t in self.take_list.chosen() if t.path in self.placements]
        if not chosen or self.plan is None:
            self.show_error("No takes of this session to insert; generate for a selection first", "")
            return None
        placements = renumbered([self.placements[t.path] for t in chosen],
                                {t.path for t in chosen if t.favourite})
        plan = self.plan

        def run():
            try:
                path = plan.deliver(placements)
                self._emit(self.relay.delivered, "inserted", str(path))
            except Exception as err:
                self._emit(self.relay.problem, f"could not write the new timeline: "
                                        f"{str(err).splitlines()[0]}", traceback.format_exc())
        thread = threading.Thread(target=run, name="mfmjt-insert", daemon=True)
        thread.start()
        return thread

    def _delivered(self, what: str, where: str) -> None:
        if what == "inserted":
            self.last_delivery = Path(where)
        self.statusBar().showMessage(f"{what}: {where}", 10000)

    def relink_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to look for offline media in")
        if folder:
            self.search_folder = Path(folder)
            self.statusBar().showMessage(f"offline media will be looked for in {folder}", 8000)

    # ================================================================= errors
    def show_error(self, message: str, details: str = "") -> None:
        """Plain words, with the technical details folded away; the panel keeps working."""
        self.errors.append((message, details))
        self.statusBar().showMessage(message, 15000)
        if os.environ.get("MFMJT_PANEL_NO_DIALOGS"):  # scripted runs (--screenshot) print it
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "MF-MJT Foley", message, parent=self)
        box.setObjectName("error")
        if details:
            box.setDetailedText(details)
        box.addButton(QMessageBox.StandardButton.Close)
        if "offline media" in message:  # offer the fix where the problem is read
            relink = box.addButton("Relink by folder…", QMessageBox.ButtonRole.ActionRole)
            relink.clicked.connect(self.relink_dialog)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # never modal-blocking: the panel keeps working behind it

    # ================================================================= drag and drop, close
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(Path(urls[0].toLocalFile()))

    def closeEvent(self, event) -> None:
        self.stop()
        if self.runner.busy:
            self.runner.cancel()
            self.runner.wait(5)
        self.frames.close()
        super().closeEvent(event)


def memory_text() -> str:
    """This process's resident memory (and the GPU's, when the engine runs on one)."""
    text = ""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        text = f"RAM {pages * os.sysconf('SC_PAGE_SIZE') / 2 ** 30:.1f} GiB"
    except (OSError, ValueError, AttributeError):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        text = f"RAM peak {peak / 2 ** 20:.1f} GiB"
    try:
        import sys
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            free, total = torch.cuda.mem_get_info()
            text += f" · GPU {(total - free) / 2 ** 30:.1f}/{total / 2 ** 30:.0f} GiB"
    except Exception:
        pass
    return text


def renumbered(placements: list, favourites: set) -> list:
    """The chosen takes of each region numbered 1, 2, ... (favourites first, then in the order
    they were made): take 1 is the track that plays and carries the marker, the others are the
    switched-off alternatives, whatever numbers the engine gave them."""
    from dataclasses import replace
    regions: dict = {}
    for p in placements:
        key = (p.record_range.start_time.to_seconds(), p.record_range.duration.to_seconds())
        regions.setdefault(key, []).append(p)
    result = []
    for group in regions.values():
        group.sort(key=lambda p: (p.wav not in favourites, placements.index(p)))
        result += [replace(p, take=number) for number, p in enumerate(group, start=1)]
    return result
