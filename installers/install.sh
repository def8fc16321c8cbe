#!/usr/bin/env bash
# Bootstrap .venv for MF-MJT Foley: idempotent, and quick when nothing changed.
# Usage: bash installers/install.sh   (MFMJT_PYTHON=/path/to/python to choose the interpreter)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.mfmjt-install-stamp"

say() { printf '[install] %s\n' "$*"; }

pick_python() {
    local candidate
    for candidate in "${MFMJT_PYTHON:-}" python3.11 python3.12 python3.10 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

# System packages that wheels do not carry: sounddevice needs PortAudio at run time; MLT's
# `melt` renders the MLT XML timelines we write (Shotcut, Kdenlive), which the tests check.
ensure_system_libraries() {
    local missing=()
    ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so' || missing+=(libportaudio2)
    command -v melt >/dev/null 2>&1 || missing+=(melt)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing system packages: ${missing[*]}"
        local install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
        if ! { DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1 \
               || { apt-get update -qq >/dev/null 2>&1 && \
                    DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1; }; }; then
            say "could not install ${missing[*]}; without PortAudio there is no playback,"
            say "without melt the MLT render test fails"
        fi
    else
        say "missing system packages: ${missing[*]} (install them with your package manager;"
        say "without PortAudio there is no playback, without melt the MLT render test fails;"
        say "everything else works)"
    fi
}

# The stamp is keyed on what decides what gets installed: the [build-system] and [project*]
# tables of pyproject.toml (not tool settings such as pytest's), and this script.
spec_hash() {
    { awk '/^\[/ { keep = ($0 ~ /^\[(project|build-system)/) } keep' "$root/pyproject.toml"
      cat "$root/installers/install.sh"; } | sha256sum | cut -d' ' -f1
}

ensure_system_libraries

want="$(spec_hash)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "environment up to date ($venv)"
    exit 0
fi

python="$(pick_python)" || { say "need Python >= 3.10 on PATH (or set MFMJT_PYTHON)"; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv with $($python --version)"
    "$python" -m venv "$venv"
fi
say "installing mfmjt-foley (editable, with dev tools); the first run downloads PyTorch"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --progress-bar off -e "$root[dev]"
echo "$want" > "$stamp"
say "done: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)')"
