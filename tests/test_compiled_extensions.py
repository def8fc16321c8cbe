"""The torch set loads as a whole, and a mismatched one is named in one line with its fix."""
from __future__ import annotations

import subprocess
import sys
from mfmjt_plugin.lockfile import tomllib
from importlib.metadata import version
from pathlib import Path

from engine import compiled_extensions as ce

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {d.split("==")[0]: d.split("==")[1] for d in deps if d.split("==")[0] in ce.TORCH_SET}


def test_the_installed_torch_set_is_the_tested_one_and_its_extensions_run():
    assert ce.tested_versions() == _pyproject_pins()
    assert {n: version(n).split("+")[0] for n in ce.TORCH_SET} == _pyproject_pins()
    assert ce.problems() == []


def test_module_entry_point_prints_the_set():
    out = subprocess.run([sys.executable, "-m", "engine.compiled_extensions", "--summary"],
                         capture_output=True, text=True, check=True)
    pins = _pyproject_pins()
    assert out.stdout.startswith(f"torch {pins['torch']}, torchaudio {pins['torchaudio']}, "
                                 f"torchvision {pins['torchvision']} (")
    assert out.stdout.rstrip().endswith("compiled extensions load")


def test_a_torchaudio_from_another_release_is_named_with_the_fix():
    installed = {"torch": "2.11.0+cu130", "torchaudio": "2.11.1", "torchvision": "0.26.0"}
    expected = {"torch": "2.11.0", "torchaudio": "2.11.0", "torchvision": "0.26.0"}
    (problem,) = ce.version_problems(expected, installed.get)
    assert problem.line() == (
        "torchaudio: 2.11.1 is installed but this release is tested with torch 2.11.0, "
        "torchaudio 2.11.0, torchvision 0.26.0; run `make install` (or installers/install.sh) "
        "to restore the locked set")


def test_a_library_that_does_not_link_is_named_by_its_missing_symbol():
    def broken():
        raise OSError("Could not load this library: /x/torchaudio/lib/libtorchaudio.so\n"
                      "/x/libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace")

    def fine():
        pass

    problems = ce.extension_problems({"torchaudio library": broken, "torchvision ops": fine})
    assert [p.line() for p in problems] == [
        "torchaudio library: does not load (OSError: undefined symbol "
        "torch_exception_get_what_without_backtrace (built for another torch)); "
        "run `make install` (or installers/install.sh) to restore the locked set"]


def test_a_missing_package_is_reported_once_not_as_a_load_failure():
    installed = {"torch": "2.11.0", "torchvision": "0.26.0"}
    problems = ce.version_problems({"torch": "2.11.0"}, installed.get)
    assert [(p.component, p.message) for p in problems] == [("torchaudio", "not installed")]
