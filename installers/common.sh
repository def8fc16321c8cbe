# Helpers shared by install.sh and uninstall.sh (sourced, not run). Written for bash 3.2 too,
# the bash macOS ships: no associative arrays, no empty "${array[@]}" under `set -u`.
# shellcheck shell=bash

APP_NAME=mfmjt-foley

SAY_TAG="${SAY_TAG:-install}"
say() { printf '[%s] %s\n' "$SAY_TAG" "$*"; }

# One clear line, then stop: every failure a user can fix ends here.
fail() { printf '[%s] error: %s\n' "$SAY_TAG" "$*" >&2; exit 1; }

sha256_stdin() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1
    else shasum -a 256 | cut -d' ' -f1; fi
}

sha256_file() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"
    else shasum -a 256 "$1"; fi
}

# The interpreters the lock is resolved and tested for: CPython 3.10 to 3.12.
python_is_supported() {
    # it must answer, not merely exit 0 (`/bin/true` would)
    [ "$("$1" -c 'import sys; print((3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null)" = True ]
}

pick_python() {
    local candidate
    if [ -n "${MFMJT_PYTHON:-}" ]; then
        python_is_supported "$MFMJT_PYTHON" && { echo "$MFMJT_PYTHON"; return 0; }
        return 1
    fi
    for candidate in python3.11 python3.12 python3.10 python3; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        python_is_supported "$candidate" && { echo "$candidate"; return 0; }
    done
    return 1
}

# A folder this installer made: empty, or holding our stamp or unfinished-install marker.
venv_is_ours() {
    [ -d "$1" ] || return 1
    [ -z "$(ls -A "$1" 2>/dev/null)" ] && return 0
    [ -f "$1/.mfmjt-install-stamp" ] || [ -f "$1/.mfmjt-install-unfinished" ]
}

# Where platformdirs puts user data for "mfmjt-foley" (engine/paths.py reads the same folder, and
# honours MFMJT_DATA_DIR the same way).
user_data_dir() {
    if [ -n "${MFMJT_DATA_DIR:-}" ]; then echo "$MFMJT_DATA_DIR"
    elif [ "$(uname -s)" = Darwin ]; then echo "$HOME/Library/Application Support/$APP_NAME"
    else echo "${XDG_DATA_HOME:-$HOME/.local/share}/$APP_NAME"; fi
}

# Launchers go where per-user commands live (XDG's ~/.local/bin, on PATH in most distributions).
user_bin_dir() { echo "${MFMJT_BIN_DIR:-${XDG_BIN_HOME:-$HOME/.local/bin}}"; }

# System packages that wheels do not carry: sounddevice needs PortAudio at run time; MLT's `melt`
# renders the MLT XML timelines we write (Shotcut, Kdenlive), which the tests check.
portaudio_present() {
    local libs
    if [ "$(uname -s)" = Darwin ]; then
        [ -e /opt/homebrew/lib/libportaudio.dylib ] || [ -e /usr/local/lib/libportaudio.dylib ]
        return
    fi
    # Read the cache whole before matching: `ldconfig -p | grep -q` under pipefail fails when grep
    # stops at the first match and ldconfig dies of SIGPIPE.
    libs="$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)"
    case "$libs" in *libportaudio.so*) return 0 ;; *) return 1 ;; esac
}

missing_system_packages() {
    local missing=""
    portaudio_present || missing="$missing libportaudio2"
    command -v melt >/dev/null 2>&1 || missing="$missing melt"
    echo "${missing# }"
}

ensure_system_libraries() {
    local missing
    missing="$(missing_system_packages)"
    [ -z "$missing" ] && return 0
    if [ "$(uname -s)" = Darwin ]; then
        say "missing: $missing; install them with: brew install portaudio mlt"
        say "(without PortAudio there is no playback, without melt the MLT render test fails)"
    elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing system packages: $missing"
        # shellcheck disable=SC2086  # $missing is a list of package names
        if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
               || { apt-get update -qq >/dev/null 2>&1 && \
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; }; }; then
            say "could not install $missing; without PortAudio there is no playback,"
            say "without melt the MLT render test fails"
        fi
    else
        say "missing system packages: $missing (sudo apt-get install $missing;"
        say "without PortAudio there is no playback, without melt the MLT render test fails;"
        say "everything else works)"
    fi
}

free_mb() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print int($4 / 1024) }'; }

# A fresh environment on Linux is about 5.5 GB (PyTorch with its CUDA libraries) plus uv's cache.
need_free_space() {
    local need="${MFMJT_INSTALL_MIN_FREE_MB:-}" have
    if [ -z "$need" ]; then
        if [ "$(uname -s)" = Darwin ]; then need=2500; else need=7000; fi
    fi
    have="$(free_mb "$1")"
    [ -z "$have" ] && return 0
    [ "$have" -ge "$need" ] || fail "only $have MB free at $1, the install needs about $need MB; free space there (or set MFMJT_VENV and UV_CACHE_DIR to a larger disk) and run again"
}

# Print one requirement of the lock with its hash lines (`name==version \` up to the last `--hash`).
lock_entry() {
    awk -v name="$1" '
        $0 ~ "^" name "==" { on = 1 }
        on { line = $0; sub(/ *#.*/, "", line); if (line != "") print line; if ($0 !~ /\\$/) exit }
    ' "$2"
}

# Why a step failed, in one line: a full disk and an unreachable index are the usual causes.
explain_failure() {
    local what="$1" log="$2" venv_dir="$3" last
    if grep -q -i -E 'no space left on device|os error 28|ENOSPC' "$log" 2>/dev/null \
            || [ "$(free_mb "$venv_dir")" = 0 ]; then
        echo "$what failed: the disk is full at $venv_dir; free some space (or set MFMJT_VENV and UV_CACHE_DIR to a larger disk) and run again: the half-built environment will be rebuilt"
    elif grep -q -i -E "dns error|failed to lookup address|connection refused|error sending request|tcp connect error|NewConnectionError|Temporary failure in name resolution|Network is unreachable|Failed to establish a new connection|Could not fetch URL|client error \(Connect\)|from versions: none" "$log" 2>/dev/null; then
        echo "$what failed: cannot reach the package index; connect to the network (or set UV_DEFAULT_INDEX and PIP_INDEX_URL to a mirror) and run again"
    else
        last="$(grep -v '^[[:space:]]*$' "$log" 2>/dev/null | tail -n 1)"
        echo "$what failed: ${last:-no output} (full output in $log)"
    fi
}

# Run a step with its output appended to the log. On a terminal under Linux the step gets a
# pseudo-terminal through script(1), so uv's progress bars show while the log keeps the text.
run_logged() {
    local what="$1" log="$2" status=0 quoted
    shift 2
    printf '\n== %s: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >>"$log"
    if [ -t 1 ] && [ "$(uname -s)" = Linux ] && command -v script >/dev/null 2>&1; then
        quoted="$(printf '%q ' "$@")"
        script -q -e -f -a -c "$quoted" "$log" >/dev/tty || status=$?
    else
        "$@" >>"$log" 2>&1 || status=$?
    fi
    [ "$status" = 0 ] || fail "$(explain_failure "$what" "$log" "$(dirname "$log")")"
}

# The commands a user install puts on PATH.
LAUNCHERS="mfmjt"

# Every folder of PATH that does not exist yet, deepest first (what `mkdir -p PATH` creates).
missing_folders() {
    local path="$1"
    while [ ! -e "$path" ]; do echo "$path"; path="$(dirname "$path")"; done
}

# The user install records what it adds before adding it, so installers/uninstall.sh can remove
# exactly that, even after an install that failed halfway. Folders it creates are recorded too
# (and removed only while empty); the user's own data beside them (weights) is never listed.
write_manifest() {
    local venv="$1" bin_dir="$2" data="$3" manifest created="" dir top name
    manifest="$data/install-manifest.txt"
    if [ -f "$manifest" ]; then created="$(grep '^created-folder ' "$manifest" || true)"; fi
    for dir in "$data" "$bin_dir"; do
        while IFS= read -r top; do
            [ -n "$top" ] && created="${created:+$created
}created-folder $top"
        done <<EOF_MISSING
$(missing_folders "$dir")
EOF_MISSING
        mkdir -p "$dir"
    done
    {
        echo "# Added by installers/install.sh --user; installers/uninstall.sh removes exactly these."
        echo "environment $venv"
        echo "log ${venv%/}.install.log"
        for name in $LAUNCHERS; do echo "launcher $bin_dir/$name"; done
        if [ -n "$created" ]; then echo "$created"; fi
    } >"$manifest.tmp"
    mv "$manifest.tmp" "$manifest"
}

# Refuse before installing anything when a launcher's place is taken by something not ours.
check_launchers_free() {
    local venv="$1" bin_dir="$2" name
    for name in $LAUNCHERS; do
        if [ -e "$bin_dir/$name" ] || [ -L "$bin_dir/$name" ]; then
            [ "$(readlink "$bin_dir/$name" 2>/dev/null)" = "$venv/bin/$name" ] \
                || fail "$bin_dir/$name exists and is not our launcher; move it away (or set MFMJT_BIN_DIR) and run again"
        fi
    done
}

# The launchers are symbolic links to the environment's commands; anything else at their path
# is the user's and is left alone.
place_launchers() {
    local venv="$1" bin_dir="$2" name
    check_launchers_free "$venv" "$bin_dir"
    for name in $LAUNCHERS; do
        [ -L "$bin_dir/$name" ] || ln -s "$venv/bin/$name" "$bin_dir/$name"
    done
    case ":$PATH:" in
        *":$bin_dir:"*) ;;
        *) say "note: $bin_dir is not on PATH; add it (e.g. in ~/.profile) to run \`mfmjt\`" ;;
    esac
}
