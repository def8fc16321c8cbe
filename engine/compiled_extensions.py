"""The torch set loads as a whole: torch, torchaudio and torchvision at the tested versions, and the
compiled extensions we use (torchaudio's library, torchvision's ops) actually run.

A torchaudio built for another torch imports fine until its shared library is loaded, and then fails
deep inside the codec with an undefined symbol. This check loads each extension and calls one of
its operators, so a mismatch is named in one line at install time, at test collection and in
`mfmjt doctor`, with the command that fixes it.

`python -m engine.compiled_extensions` exits 1 with that line on a broken set;
`--summary` prints the versions of a good one.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires, version
from typing import Callable

TORCH_SET = ("torch", "torchaudio", "torchvision")
FIX = "run `make install` (or installers/install.sh) to restore the locked set"


@dataclass(frozen=True)
class ExtensionProblem:
    component: str
    message: str

    def line(self) -> str:
        return f"{self.component}: {self.message}; {FIX}"


def _base_version(text: str) -> str:
    """'2.11.0+cu130' -> '2.11.0': the local label names the build, not the release."""
    return text.split("+", 1)[0]


def tested_versions() -> dict[str, str]:
    """The exact torch set this release pins (`name==version` in our package metadata)."""
    try:
        declared = requires("mfmjt-foley") or []
    except PackageNotFoundError:
        return {}
    found = {}
    for requirement in declared:
        match = re.match(r"^\s*(torch|torchaudio|torchvision)\s*==\s*([0-9][^;,\s]*)", requirement)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def installed_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def version_problems(expected: dict[str, str] | None = None,
                     installed: Callable[[str], str | None] = installed_version) -> list[ExtensionProblem]:
    expected = tested_versions() if expected is None else expected
    problems = []
    for name in TORCH_SET:
        have = installed(name)
        if have is None:
            problems.append(ExtensionProblem(name, "not installed"))
        elif name in expected and _base_version(have) != expected[name]:
            tested = ", ".join(f"{n} {v}" for n, v in sorted(expected.items()))
            problems.append(ExtensionProblem(
                name, f"{have} is installed but this release is tested with {tested}"))
    return problems


def _load_torchaudio() -> None:
    import torch
    import torchaudio  # noqa: F401  (loads libtorchaudio, where a mismatched build fails)
    import torchaudio.functional as AF
    # lfilter's CPU loop is a compiled torchaudio operator: calling it proves the library linked.
    out = AF.lfilter(torch.ones(1, 4), torch.tensor([1.0, -0.5]), torch.tensor([1.0, 0.0]))
    if not torch.isfinite(out).all():
        raise RuntimeError("lfilter returned non-finite values")


def _load_torchvision() -> None:
    # torchvision's own import builds its model zoo (seconds); its operators live in one library,
    # loaded here the way torchvision.extension loads it, and called directly.
    import importlib.util
    from pathlib import Path

    import torch
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchvision is not installed")
    libraries = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C.*"))
    if not libraries:
        raise ImportError("torchvision has no compiled _C library")
    torch.ops.load_library(str(libraries[0]))
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    kept = torch.ops.torchvision.nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    if kept.tolist() != [0]:
        raise RuntimeError(f"nms kept {kept.tolist()} of two identical boxes")


LOADERS: dict[str, Callable[[], None]] = {
    "torchaudio library": _load_torchaudio,
    "torchvision ops": _load_torchvision,
}


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    detail = text[-1] if text else ""
    symbol = re.search(r"undefined symbol: (\S+)", str(err))
    if symbol:
        detail = f"undefined symbol {symbol.group(1)} (built for another torch)"
    return f"{type(err).__name__}: {detail}" if detail else type(err).__name__


def extension_problems(loaders: dict[str, Callable[[], None]] | None = None) -> list[ExtensionProblem]:
    problems = []
    for component, load in (LOADERS if loaders is None else loaders).items():
        try:
            load()
        except Exception as err:  # any failure to load is the finding; report it, do not crash
            problems.append(ExtensionProblem(component, f"does not load ({_first_line(err)})"))
    return problems


def problems() -> list[ExtensionProblem]:
    found = version_problems()
    # Loading a missing package only repeats "not installed"; skip the loaders then.
    return found if any(p.message == "not installed" for p in found) else found + extension_problems()


def summary() -> str:
    import torch
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
    names = ", ".join(f"{n} {installed_version(n)}" for n in TORCH_SET)
    return f"{names} ({build}); compiled extensions load"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    found = problems()
    for problem in found:
        print(problem.line(), file=sys.stderr)
    if found:
        return 1
    if "--summary" in argv:
        print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
