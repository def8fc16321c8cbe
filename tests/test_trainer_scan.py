"""Scanning a studio library: every caption source, bad files reported, nothing modified."""
import json

import pytest

from mfmjt_plugin.cli import main
from tests.library_factory import make_library, tree_hashes
from trainer.data import scan_library, ucs_caption


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return make_library(tmp_path_factory.mktemp("lib") / "library")


def test_exact_report(library):
    before = tree_hashes(library)
    report = scan_library(library)
    assert report.to_text().splitlines() == [
        f"Library: {library}",
        "Files: 6 usable (5 audio, 1 video), 2 skipped",
        "Duration: 0.0082 h (29.5 s); 8 s windows: 7 (5 padded)",
        "Sample rates: 16000 Hz (1), 44100 Hz (2), 48000 Hz (3) (resampled to the codec rate, mono)",
        "Captions: manifest 1, sidecar 1, bext 1, ucs 1, filename 2",
        "Caption per file (the one training will use):",
        *[f'  {i.path.relative_to(library)}: "{i.caption.text}" ({i.caption.source})'
          for i in report.items],
        "Skipped:",
        "  corrupt.wav: not a readable media file (corrupt or truncated)",
        "  silent.mp4: no audio stream",
    ]
    captions = {item.path.name: (item.caption.source, item.caption.text) for item in report.items}
    assert captions == {
        "DOORWood_Slam Heavy Oak_JD_MFX.wav": ("ucs", "door wood slam heavy oak"),
        "take_042.wav": ("bext", "glass tapped twice"),
        "clip_a.flac": ("manifest", "footsteps on gravel"),
        "drips.ogg": ("sidecar", "water drips in a cave"),
        "plain_name-take 3.mp3": ("filename", "plain name take"),
        "scene.mp4": ("filename", "scene"),
    }
    kinds = {item.path.name: item.kind for item in report.items}
    assert kinds["scene.mp4"] == "video" and kinds["take_042.wav"] == "audio"
    clip_a = next(i for i in report.items if i.path.name == "clip_a.flac")
    assert (clip_a.caption.start, clip_a.caption.end, clip_a.windows(8.0)) == (0.5, 16.5, 2)
    assert tree_hashes(library) == before  # the library is never modified


def test_ucs_names():
    assert ucs_caption("FOLYCloth_Jacket Rustle Fast_AB_LIB") == "foley cloth jacket rustle fast"
    assert ucs_caption("GLASBreak_Bottle Smash_XY_SRC_take2") == "glass break bottle smash"
    assert ucs_caption("ZZZZ_Thing_A_B") == "zzzz thing"  # unknown category: kept as words
    assert ucs_caption("door_slam") is None  # not CatID_FXName_CreatorID_SourceID
    assert ucs_caption("doorSlam_a_b_c") is None  # CatIDs start upper case


def test_cli_json_and_exit_codes(library, tmp_path, capsys):
    assert main(["train", "scan", str(library), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["usable_files"] == 6 and data["caption_sources"]["filename"] == 2
    assert data["skipped"][1] == {"path": "silent.mp4", "reason": "no audio stream"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "scan", str(empty)]) == 1
    assert "No usable audio: training cannot proceed" in capsys.readouterr().out
    assert main(["train", "scan", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_soundminer_metadata_csv_names_files_without_folders(library, tmp_path, capsys):
    """Soundminer and BaseHead export `Filename,Description,...`: the file's name only, wherever
    it lies under the library."""
    import shutil
    copy = tmp_path / "library"
    shutil.copytree(library, copy)
    # as Excel's "CSV UTF-8" saves it: a byte-order mark, ";" in European locales, CRLF
    (copy / "metadata.csv").write_bytes(
        "\ufeffFilename;Description;Category;SubCategory\r\n"
        "drips.ogg;Slow water drips echo in a stone cave;WATER;DRIP\r\n"
        "plain_name-take 3.mp3;Leather boots on wet gravel;FOOTSTEPS;GRAVEL\r\n".encode("utf-8"))
    report = scan_library(copy)
    captions = {i.path.name: (i.caption.source, i.caption.text) for i in report.items}
    assert captions["drips.ogg"] == ("manifest", "Slow water drips echo in a stone cave")
    assert captions["plain_name-take 3.mp3"] == ("manifest", "Leather boots on wet gravel")
    assert main(["train", "scan", str(copy), "--json"]) == 0
    listed = {c["path"]: (c["caption"], c["source"]) for c in json.loads(capsys.readouterr().out)["captions"]}
    drips = next(i for i in report.items if i.path.name == "drips.ogg")
    assert listed[str(drips.path.relative_to(copy))] == ("Slow water drips echo in a stone cave", "manifest")


def test_ucs_subcategory_abbreviations_become_words():
    assert ucs_caption("METLImpt_Pipe Hit_AB_LIB") == "metal impact pipe hit"
    assert ucs_caption("FOLYFeet_Boots Gravel_AB_LIB") == "foley feet boots gravel"
    assert ucs_caption("DOORMvmt_Creak Slow_AB_LIB") == "door movement creak slow"
