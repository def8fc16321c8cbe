"""Reading installers/requirements.lock (written by `make lock`, uv's universal requirements
format) and comparing it with pyproject.toml and with the running environment.

The lock-consistency tests and `mfmjt doctor` use it: a dependency added without re-locking, or an
environment that drifted from the lock (a hand-installed torchaudio), is named with its fix.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 installs
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_PATH = REPO_ROOT / "installers" / "requirements.lock"
TOOLS_PATH = REPO_ROOT / "installers" / "tools.in"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
PROJECT_NAME = "mfmjt-foley"

# The platforms the lock must serve (installers for Linux, macOS and Windows read the same file).
TARGETS = {
    f"linux-x86_64-py3.{minor}": {"sys_platform": "linux", "platform_system": "Linux",
                                  "platform_machine": "x86_64", "os_name": "posix",
                                  "python_version": f"3.{minor}", "python_full_version": f"3.{minor}.9",
                                  "implementation_name": "cpython",
                                  "platform_python_implementation": "CPython"}
    for minor in (10, 11, 12)
}
TARGETS["macos-arm64-py3.11"] = {**TARGETS["linux-x86_64-py3.11"], "sys_platform": "darwin",
                                 "platform_system": "Darwin", "platform_machine": "arm64"}
TARGETS["windows-amd64-py3.11"] = {**TARGETS["linux-x86_64-py3.11"], "sys_platform": "win32",
                                   "platform_system": "Windows", "platform_machine": "AMD64",
                                   "os_name": "nt"}


@dataclass(frozen=True)
class Pin:
    name: str            # canonical
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(path: Path = LOCK_PATH) -> list[Pin]:
    """Every `name==version [; marker]` entry with its `--hash=sha256:` lines."""
    pins: list[Pin] = []
    entry: list[str] = []

    def flush():
        if not entry:
            return
        text = " ".join(part.rstrip("\\").strip() for part in entry)
        hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", text))
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", text).strip())
        (spec,) = requirement.specifier  # the lock holds exactly one == per entry
        pins.append(Pin(canonicalize_name(requirement.name), spec.version, requirement.marker, hashes))
        entry.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("--hash") else raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not raw.startswith((" ", "\t")):
            flush()
        entry.append(line)
    flush()
    return pins


def pins_for(pins: list[Pin], environment: dict[str, str] | None = None) -> dict[str, Pin]:
    """The pins that apply in one environment (None: this interpreter), by canonical name."""
    chosen: dict[str, Pin] = {}
    for pin in pins:
        if pin.applies(environment):
            if pin.name in chosen:
                raise ValueError(f"the lock pins {pin.name} twice for one environment "
                                 f"({chosen[pin.name].version} and {pin.version}); run `make lock`")
            chosen[pin.name] = pin
    return chosen


def declared_requirements(pyproject: Path = PYPROJECT_PATH, tools: Path = TOOLS_PATH) -> list[Requirement]:
    """What the lock must satisfy: the project's dependencies, its dev extra, its build system and
    the installer's own tools."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    texts = list(data["project"]["dependencies"])
    texts += data["project"].get("optional-dependencies", {}).get("dev", [])
    texts += data["build-system"]["requires"]
    texts += [line.split("#", 1)[0].strip() for line in tools.read_text(encoding="utf-8").splitlines()]
    return [Requirement(text) for text in texts if text]


def unmet(requirements: list[Requirement], pins: dict[str, Pin],
          environment: dict[str, str] | None = None) -> list[str]:
    """Declared requirements that the lock does not satisfy in this environment, in words."""
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} has no pin in the lock")
        elif not requirement.specifier.contains(Version(pin.version), prereleases=True):
            problems.append(f"{requirement} is not met by the locked {pin.name}=={pin.version}")
    return problems


def installed_versions() -> dict[str, str]:
    found = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = dist.version
    return found


def drift(pins: dict[str, Pin], installed: dict[str, str]) -> list[str]:
    """How this environment differs from the lock: wrong versions, missing and extra packages."""
    problems = []
    for name, pin in sorted(pins.items()):
        have = installed.get(name)
        if have is None:
            problems.append(f"{name} {pin.version} is missing")
        elif Version(have).public != Version(pin.version).public:  # +cu126 names a build, not a release
            problems.append(f"{name} is {have}, the lock says {pin.version}")
    extra = sorted(set(installed) - set(pins) - {canonicalize_name(PROJECT_NAME)})
    problems += [f"{name} {installed[name]} is not in the lock" for name in extra]
    return problems


def environment_drift() -> list[str] | None:
    """Drift of the running environment from the checkout's lock; None outside a checkout."""
    if not LOCK_PATH.is_file():
        return None
    return drift(pins_for(read_lock()), installed_versions())


if __name__ == "__main__":
    found = environment_drift()
    print("no lock here (not a checkout)" if found is None else "\n".join(found) or "matches the lock")
    sys.exit(1 if found else 0)
