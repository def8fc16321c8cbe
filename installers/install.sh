#!/usr/bin/env bash
# Install MF-MJT Foley from the lock (installers/requirements.lock): idempotent, and well under a
# second when nothing changed.
#
#   bash installers/install.sh          the development environment .venv in this checkout
#                                       (editable, with the test tools); `make demo` / `make test`
#   bash installers/install.sh --user   for a user: an environment in the user data directory and
#                                       the `mfmjt` launcher in ~/.local/bin; undone exactly by
#                                       installers/uninstall.sh
#
# MFMJT_PYTHON chooses the interpreter, MFMJT_VENV the environment's folder. uv reads
# UV_DEFAULT_INDEX for a mirror of the package index.
# Linux and macOS (CPU / MPS); Windows has installers/install.ps1 with the same steps.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/installers/requirements.lock"
# shellcheck source=installers/common.sh
. "$root/installers/common.sh"

mode=dev
case "${1:-}" in
    "") ;;
    --user) mode=user ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown option '$1'; use --user for a user install, or no option for .venv" ;;
esac

if [ "$mode" = user ]; then
    data="$(user_data_dir)"
    venv="${MFMJT_VENV:-$data/venv}"
    bin_dir="$(user_bin_dir)"
    check_launchers_free "$venv" "$bin_dir"
    write_manifest "$venv" "$bin_dir" "$data"
else
    venv="${MFMJT_VENV:-$root/.venv}"
fi
stamp="$venv/.mfmjt-install-stamp"
unfinished="$venv/.mfmjt-install-unfinished"
log="${venv%/}.install.log"

ensure_system_libraries

# The stamp is keyed on what decides the installed environment: the lock, the [project] and
# [build-system] tables of pyproject.toml (not tool settings such as pytest's), these scripts and
# the mode. A user install also copies the package, so its sources count there.
spec_hash() {
    {
        echo "$mode"
        cat "$lock" "$root/installers/install.sh" "$root/installers/common.sh"
        awk '/^\[/ { keep = ($0 ~ /^\[(project|build-system)/) } keep' "$root/pyproject.toml"
        if [ "$mode" = user ]; then
            (cd "$root" && find engine mfmjt_plugin trainer ui -type f ! -name '*.pyc' | LC_ALL=C sort \
                | while IFS= read -r f; do sha256_file "$f"; done)
        fi
    } | sha256_stdin
}

want="$(spec_hash)"
if [ -f "$stamp" ] && [ ! -e "$unfinished" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$venv/bin/python" -c '' 2>/dev/null; then
    if [ "$mode" = user ]; then place_launchers "$venv" "$bin_dir"; fi
    say "environment up to date ($venv)"
    exit 0
fi

# Only a folder this installer made is ever changed or removed: an empty one, or one holding our
# stamp or our unfinished-install marker (MFMJT_VENV pointing at someone's own environment or
# folder is refused, never synced or deleted).
if [ -e "$venv" ] && ! venv_is_ours "$venv"; then
    fail "$venv exists and is not an environment this installer made; choose another folder (MFMJT_VENV) or move it away"
fi

# An interrupted install (Ctrl-C, kill, a full disk) leaves the marker behind, or a venv whose
# Python no longer runs: start that environment again rather than patching an unknown state.
if [ -e "$venv" ] && [ -n "$(ls -A "$venv" 2>/dev/null)" ] \
        && { [ -e "$unfinished" ] || ! "$venv/bin/python" -c '' 2>/dev/null; }; then
    say "rebuilding $venv: an earlier install did not finish"
    rm -rf "$venv"
fi

if ! python="$(pick_python)"; then
    [ -n "${MFMJT_PYTHON:-}" ] && fail "MFMJT_PYTHON=$MFMJT_PYTHON is not a Python 3.10, 3.11 or 3.12; point it at one"
    fail "need Python 3.10, 3.11 or 3.12 on PATH (or MFMJT_PYTHON=/path/to/python); install one, e.g. apt-get install python3.11-venv"
fi

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    need_free_space "$(dirname "$venv")"
    say "creating $venv with $("$python" --version 2>&1)"
    # the marker first: a venv interrupted while being created is still known as ours
    mkdir -p "$venv"
    touch "$unfinished"
    "$python" -m venv "$venv" >>"$log" 2>&1 \
        || fail "could not create $venv with $python (see $log); on Debian/Ubuntu: apt-get install python3-venv"
fi
touch "$unfinished"
if [ -x "$venv/bin/uv" ]; then first_time=no; else first_time=yes; fi

# uv itself comes from the lock, hash-checked, through the venv's own pip.
uv_requirement="$(mktemp)"
trap 'rm -f "$uv_requirement"' EXIT
lock_entry uv "$lock" >"$uv_requirement"
run_logged "installing uv from the lock" "$log" \
    "$venv/bin/python" -m pip install --disable-pip-version-check --require-hashes --no-deps \
    -r "$uv_requirement"

if [ "$first_time" = yes ]; then
    say "installing the locked environment into $venv (the first run downloads PyTorch, several GB)"
else
    say "updating $venv to the lock"
fi
run_logged "installing the locked environment" "$log" \
    "$venv/bin/uv" pip sync --require-hashes --compile-bytecode --python "$venv/bin/python" "$lock"

if [ "$mode" = user ]; then
    run_logged "installing mfmjt-foley" "$log" "$venv/bin/uv" pip install --no-deps \
        --no-build-isolation --reinstall-package mfmjt-foley --python "$venv/bin/python" "$root"
else
    run_logged "installing mfmjt-foley (editable)" "$log" "$venv/bin/uv" pip install --no-deps \
        --no-build-isolation --python "$venv/bin/python" -e "$root"
fi

# The torch set must load as a whole (compiled extensions included) before we call it installed.
"$venv/bin/python" -m engine.compiled_extensions >>"$log" 2>&1 \
    || fail "$("$venv/bin/python" -m engine.compiled_extensions 2>&1 | tail -n 1)"

rm -f "$unfinished"
echo "$want" >"$stamp"
if [ "$mode" = user ]; then
    place_launchers "$venv" "$bin_dir"
    say "installed: $bin_dir/mfmjt (installers/uninstall.sh removes it again)"
fi
say "done: $("$venv/bin/python" -m engine.compiled_extensions --summary)"
