#!/bin/sh
# Add llmlb to this user's application menu: writes $XDG_DATA_HOME/applications/llmlb.desktop
# (Exec: the program's absolute path) and the icon into the hicolor theme. Shipped in the Linux
# bundle beside llmlb, llmlb.desktop and llmlb.png; the single-file .run calls it for
# `--install-desktop-entry`.
#
# Usage: install-desktop-entry.sh [PROGRAM]   (default: the llmlb beside this script)
#   From a checkout, for a `pipx install .`: sh packaging/install-desktop-entry.sh "$(command -v llmlb)"
# Undo:  rm ~/.local/share/applications/llmlb.desktop ~/.local/share/icons/hicolor/256x256/apps/llmlb.png
set -eu

here=$(cd "$(dirname "$0")" && pwd)
program=$(readlink -f "${1:-$here/llmlb}")
[ -x "$program" ] || { echo "install-desktop-entry: $program is not an executable" >&2; exit 1; }
data=${XDG_DATA_HOME:-$HOME/.local/share}
icons="$data/icons/hicolor/256x256/apps"
icon="$here/llmlb.png"                                   # the bundle's copy
[ -f "$icon" ] || icon="$here/../resources/icon.png"     # a checkout's
mkdir -p "$data/applications" "$icons"
cp "$icon" "$icons/llmlb.png"
# Desktop entries quote an argument holding spaces; \, ", ` and $ are escaped inside quotes.
quoted=$(printf '%s' "$program" | sed 's/[\\"`$]/\\\\&/g')
sed "s|^Exec=.*|Exec=\"$quoted\"|" "$here/llmlb.desktop" > "$data/applications/llmlb.desktop"
chmod 644 "$data/applications/llmlb.desktop"
# Menus refresh by themselves on most desktops; these help the others (best effort).
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" 2>/dev/null || true
echo "llmlb is in the application menu: $data/applications/llmlb.desktop (starts $program)"
