"""The installers, run for real with bash: idempotence, the system-package check, bad input in one
line with the next run repairing, and the user install undone exactly by the uninstaller."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALLERS = ROOT / "installers"
INSTALL = INSTALLERS / "install.sh"
UNINSTALL = INSTALLERS / "uninstall.sh"
VENV_BIN = Path(sys.executable).parent
BASH = shutil.which("bash")


def _bash(script: Path | str, *args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run([BASH, str(script), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def _offline_env(tmp_path: Path, **extra: str) -> dict:
    """Every package index unreachable (a closed port on loopback), no caches or local wheels."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    closed = "http://127.0.0.1:9/simple"
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=closed, PIP_NO_CACHE_DIR="1",
               PIP_RETRIES="0", PIP_TIMEOUT="5", UV_DEFAULT_INDEX=closed, UV_HTTP_RETRIES="0",
               UV_CACHE_DIR=str(tmp_path / "uv-cache"), MFMJT_VENV=str(tmp_path / "venv"))
    env.update(extra)
    return env


def _source_common(body: str, env: dict | None = None):
    script = f'set -euo pipefail; . "{INSTALLERS / "common.sh"}"; {body}'
    return subprocess.run([BASH, "-c", script], capture_output=True, text=True, env=env)


def test_installer_scripts_are_shellcheck_clean():
    scripts = sorted(str(p) for p in INSTALLERS.glob("*.sh"))
    assert len(scripts) == 4
    out = subprocess.run([str(VENV_BIN / "shellcheck"), "-x", *scripts], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_second_run_changes_nothing_and_says_so_in_one_line():
    assert Path(sys.prefix) == ROOT / ".venv", "run the suite with `make test` (the installer's .venv)"
    out = _bash(INSTALL)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"[install] environment up to date ({ROOT / '.venv'})\n"
    assert out.stderr == ""


def test_system_package_check_holds_under_pipefail(tmp_path):
    """`ldconfig -p | grep -q` failed under pipefail (SIGPIPE), so apt-get ran every time."""
    assert _source_common("missing_system_packages").stdout == "\n"
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("uname", "ldconfig", "dirname"):
        found = shutil.which(tool) or shutil.which(tool, path="/sbin:/usr/sbin")
        (bare / tool).symlink_to(found)
    out = _source_common("missing_system_packages", env=dict(os.environ, PATH=str(bare)))
    assert out.stdout == "melt\n"


def test_lock_entry_is_the_pin_with_all_its_hashes():
    out = _source_common(f'lock_entry uv "{INSTALLERS / "requirements.lock"}"')
    lines = out.stdout.splitlines()
    assert lines[0].startswith("uv==") and lines[0].endswith(" \\")
    assert all(line.strip().startswith("--hash=sha256:") for line in lines[1:])
    assert len(lines) > 5 and not lines[-1].endswith("\\")


@pytest.mark.parametrize("python", ["/nonexistent/python3.9", "/bin/true"])
def test_a_python_that_is_not_supported_is_named(tmp_path, python):
    env = _offline_env(tmp_path, MFMJT_PYTHON=python)
    out = _bash(INSTALL, env=env)
    assert out.returncode == 1
    assert out.stderr == (f"[install] error: MFMJT_PYTHON={python} is not a Python "
                          "3.10, 3.11 or 3.12; point it at one\n")
    assert not (tmp_path / "venv").exists()


def test_no_python_on_path_is_one_line(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("awk", "cat", "cut", "sha256sum", "dirname", "uname", "id", "melt", "mkdir", "df",
                 "grep", "sed", "rm", "ldconfig", "readlink", "mktemp", "find", "sort"):
        found = shutil.which(tool) or shutil.which(tool, path="/sbin:/usr/sbin")
        (bare / tool).symlink_to(found)
    env = _offline_env(tmp_path, PATH=str(bare))
    out = _bash(INSTALL, env=env)
    assert out.returncode == 1
    assert out.stderr == ("[install] error: need Python 3.10, 3.11 or 3.12 on PATH (or "
                          "MFMJT_PYTHON=/path/to/python); install one, e.g. apt-get install "
                          "python3.11-venv\n")


def test_too_little_disk_is_refused_before_anything_is_written(tmp_path):
    env = _offline_env(tmp_path, MFMJT_INSTALL_MIN_FREE_MB=str(10**9))
    out = _bash(INSTALL, env=env)
    assert out.returncode == 1
    line = out.stderr.strip()
    assert "\n" not in line
    assert line.startswith("[install] error: only ") and line.endswith(
        f"MB free at {tmp_path}, the install needs about {10**9} MB; free space there (or set "
        "MFMJT_VENV and UV_CACHE_DIR to a larger disk) and run again")
    assert not (tmp_path / "venv").exists()


def test_no_network_is_one_line_and_the_next_run_rebuilds_the_half_built_venv(tmp_path):
    env = _offline_env(tmp_path)
    first = _bash(INSTALL, env=env)
    assert first.returncode == 1
    assert first.stderr == ("[install] error: installing uv from the lock failed: cannot reach the "
                            "package index; connect to the network (or set UV_DEFAULT_INDEX and "
                            "PIP_INDEX_URL to a mirror) and run again\n")
    venv = tmp_path / "venv"
    assert (venv / ".mfmjt-install-unfinished").exists()
    assert not (venv / ".mfmjt-install-stamp").exists()
    (venv / "left-over").write_text("from the interrupted run")

    second = _bash(INSTALL, env=env)
    assert f"[install] rebuilding {venv}: an earlier install did not finish\n" in second.stdout
    assert not (venv / "left-over").exists()
    assert second.returncode == 1 and second.stderr == first.stderr


def test_a_folder_the_installer_did_not_make_is_never_synced_or_deleted(tmp_path):
    """MFMJT_VENV pointing at a user's own folder (or own venv): refused, untouched."""
    theirs = tmp_path / "tools"
    (theirs / "bin").mkdir(parents=True)
    (theirs / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (theirs / "notes.txt").write_text("mine")
    out = _bash(INSTALL, env=_offline_env(tmp_path, MFMJT_VENV=str(theirs)))
    assert out.returncode == 1
    assert out.stderr == (f"[install] error: {theirs} exists and is not an environment this "
                          "installer made; choose another folder (MFMJT_VENV) or move it away\n")
    assert _tree(theirs) == ["bin", "notes.txt", "pyvenv.cfg"]


def test_a_venv_whose_python_is_gone_is_rebuilt(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".mfmjt-install-stamp").write_text("stale")
    out = _bash(INSTALL, env=_offline_env(tmp_path))
    assert f"[install] rebuilding {venv}: an earlier install did not finish\n" in out.stdout
    assert (venv / "bin" / "python").exists()  # created again before the (offline) download failed


def test_uv_without_network_is_explained(tmp_path):
    """A real uv failure against an unreachable index, read by the installer's explanation."""
    env = _offline_env(tmp_path)
    log = tmp_path / "uv.log"
    with log.open("w") as sink:
        rc = subprocess.run([str(VENV_BIN / "uv"), "pip", "compile", "--no-progress", "-"],
                            input="numpy==2.2.6\n", text=True, stdout=sink, stderr=sink, env=env).returncode
    assert rc != 0
    out = _source_common(f'explain_failure "installing the locked environment" "{log}" "{tmp_path}"')
    assert out.stdout == ("installing the locked environment failed: cannot reach the package index; "
                          "connect to the network (or set UV_DEFAULT_INDEX and PIP_INDEX_URL to a "
                          "mirror) and run again\n")


def test_a_full_disk_is_explained(tmp_path):
    """The kernel's own ENOSPC message (writing to /dev/full), read by the installer."""
    log = tmp_path / "install.log"
    with log.open("w") as sink:
        subprocess.run(["cp", str(INSTALL), "/dev/full"], stdout=sink, stderr=sink)
    assert "No space left on device" in log.read_text()
    out = _source_common(f'explain_failure "installing the locked environment" "{log}" "{tmp_path}"')
    assert out.stdout == (f"installing the locked environment failed: the disk is full at {tmp_path}; "
                          "free some space (or set MFMJT_VENV and UV_CACHE_DIR to a larger disk) and "
                          "run again: the half-built environment will be rebuilt\n")


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _user_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MFMJT_VENV", "XDG_DATA_HOME", "XDG_BIN_HOME")}
    # uv's cache stays the real one (found before HOME moves), so the packages are linked from it
    uv_cache = subprocess.run([str(VENV_BIN / "uv"), "cache", "dir"], capture_output=True,
                              text=True, check=True).stdout.strip()
    # tools found on PATH (rustup's proxies) keep their own homes, not the test's HOME
    real_home = Path.home()
    env.setdefault("RUSTUP_HOME", str(real_home / ".rustup"))
    env.setdefault("CARGO_HOME", str(real_home / ".cargo"))
    env.update(HOME=str(home), UV_CACHE_DIR=uv_cache, MFMJT_DATA_DIR=str(home / ".local/share/mfmjt-foley"),
               MFMJT_BIN_DIR=str(home / ".local/bin"))
    return env


def test_a_launcher_place_taken_by_a_user_file_is_refused_untouched(tmp_path):
    home = tmp_path / "home"
    (home / ".local/bin").mkdir(parents=True)
    (home / ".local/bin/mfmjt").write_text("#!/bin/sh\necho mine\n")
    out = _bash(INSTALL, "--user", env=_user_env(home))
    assert out.returncode == 1
    assert out.stderr == (f"[install] error: {home}/.local/bin/mfmjt exists and is not our launcher; "
                          "move it away (or set MFMJT_BIN_DIR) and run again\n")
    assert (home / ".local/bin/mfmjt").read_text() == "#!/bin/sh\necho mine\n"
    assert _tree(home) == [".local", ".local/bin", ".local/bin/mfmjt"]


@pytest.mark.slow
def test_user_install_runs_from_anywhere_and_uninstall_removes_exactly_it(tmp_path):
    """A real install from the lock (uv links the packages from its cache) into the user data
    folder, the launcher run from another folder, then the uninstaller."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config/other-app.ini").write_text("[keep]\n")
    before = _tree(home)
    env = _user_env(home)
    data = home / ".local/share/mfmjt-foley"

    out = _bash(INSTALL, "--user", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    launcher = home / ".local/bin/mfmjt"
    assert os.readlink(launcher) == str(data / "venv/bin/mfmjt")
    version = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, cwd="/")
    assert version.stdout.startswith("mfmjt-foley 0.1.0")
    # a non-editable install: the package lives in the environment, not in this checkout
    where = subprocess.run([str(data / "venv/bin/python"), "-c",
                            "import mfmjt_plugin; print(mfmjt_plugin.__file__)"],
                           capture_output=True, text=True, cwd="/").stdout.strip()
    assert where.startswith(str(data / "venv")), where
    assert (data / "install-manifest.txt").read_text().splitlines()[1:] == [
        f"environment {data}/venv", f"log {data}/venv.install.log", f"launcher {launcher}",
        f"created-folder {data}", f"created-folder {home}/.local/share",
        f"created-folder {home}/.local", f"created-folder {home}/.local/bin"]

    again = _bash(INSTALL, "--user", env=env)
    assert again.stdout.splitlines()[-1] == f"[install] environment up to date ({data}/venv)"

    # the user's own data in the same folder is not ours to remove
    (data / "weights").mkdir()
    (data / "weights/index.json").write_text("{}")
    removed = _bash(UNINSTALL, env=env)
    assert removed.returncode == 0, removed.stderr
    assert _tree(home) == sorted(before + [".local", ".local/share", ".local/share/mfmjt-foley",
                                           ".local/share/mfmjt-foley/weights",
                                           ".local/share/mfmjt-foley/weights/index.json"])
    (data / "weights/index.json").unlink()
    (data / "weights").rmdir()
    assert _bash(UNINSTALL, env=env).stdout == (
        f"[uninstall] nothing to uninstall: no user install recorded at {data}/install-manifest.txt\n")
