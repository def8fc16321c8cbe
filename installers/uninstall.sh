#!/usr/bin/env bash
# Undo `installers/install.sh --user` exactly: the launchers, the environment, its install log and
# the folders the install created (only while empty), as its manifest lists them. The user's own
# data in the same folder (imported weights, settings) stays.
#
#   bash installers/uninstall.sh [--dry-run]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=installers/common.sh
SAY_TAG=uninstall
. "$root/installers/common.sh"

dry_run=no
case "${1:-}" in
    "") ;;
    --dry-run) dry_run=yes ;;
    *) fail "unknown option '$1'; use --dry-run to list what would be removed" ;;
esac

data="$(user_data_dir)"
manifest="$data/install-manifest.txt"
if [ ! -f "$manifest" ]; then
    say "nothing to uninstall: no user install recorded at $manifest"
    exit 0
fi

environment="$(awk '$1 == "environment" { sub(/^environment /, ""); print; exit }' "$manifest")"

remove() {
    if [ "$dry_run" = yes ]; then say "would remove $1"; else rm -rf -- "$1"; say "removed $1"; fi
}

while IFS= read -r line; do
    kind="${line%% *}"
    path="${line#* }"
    case "$kind" in
        launcher)
            if [ -L "$path" ] && [ "$(readlink "$path")" = "$environment/bin/$(basename "$path")" ]; then
                remove "$path"
            elif [ -e "$path" ] || [ -L "$path" ]; then
                say "leaving $path: it is not our launcher any more"
            fi ;;
        environment)
            # Only a folder that our installer made: a virtual environment with our marker files.
            if [ -f "$path/pyvenv.cfg" ] && { [ -f "$path/.mfmjt-install-stamp" ] \
                    || [ -f "$path/.mfmjt-install-unfinished" ]; }; then
                remove "$path"
            elif [ -e "$path" ]; then
                say "leaving $path: it is not an environment this installer made"
            fi ;;
        log)
            if [ -f "$path" ]; then remove "$path"; fi ;;
    esac
done <"$manifest"

created="$(awk '$1 == "created-folder" { sub(/^created-folder /, ""); print }' "$manifest")"
if [ "$dry_run" = yes ]; then
    say "would remove $manifest, and these folders where they are left empty: $(echo "${created:-none}" | paste -sd, - | sed 's/,/, /g')"
    exit 0
fi
rm -f -- "$manifest"
say "removed $manifest"
# Folders the install created go only while empty, deepest first; nothing else is touched
# (other programs' folders made since inside them stay, and so do these).
while IFS= read -r path; do
    [ -n "$path" ] && [ -d "$path" ] || continue
    rmdir "$path" 2>/dev/null || say "kept $path: it holds other files now"
done <<EOF_CREATED
$(printf '%s\n' "$created" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
EOF_CREATED
