#!/usr/bin/env bash
# Regenerate installers/requirements.lock (`make lock`): the exact, hash-checked environment that
# every installer installs, resolved by uv for every platform and CPython >= 3.10 at once
# (markers say which pin applies where). Run it after any change to the dependencies in
# pyproject.toml or installers/tools.in, then commit the lock with that change.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
uv="${MFMJT_UV:-$root/.venv/bin/uv}"
[ -x "$uv" ] || { echo "[lock] no uv at $uv: run \`make install\` first (it installs uv from the lock)"; exit 1; }

cd "$root"
# The public index only: a machine's pip configuration (mirrors, find-links, constraints) must not
# leak into the lock everyone installs from.
"$uv" pip compile pyproject.toml installers/tools.in --extra dev \
    --universal --python-version 3.10 --generate-hashes \
    --default-index "${MFMJT_LOCK_INDEX:-https://pypi.org/simple}" \
    --custom-compile-command "make lock" --no-progress --quiet \
    -o installers/requirements.lock
echo "[lock] wrote installers/requirements.lock ($(grep -c '^[A-Za-z0-9]' installers/requirements.lock) pins)"
