"""Make the single-file Linux app: dist/llmlb-<version>-linux-<arch>.run, a shell header
followed by the one-folder bundle (dist/llmlb/) as a .tar.gz.

Its first start unpacks the bundle into ~/.cache/llmlb/app/<version>-<digest>/ (atomically:
into a temporary folder, then renamed); every later start runs from there at once, so the app
starts as fast as the one-folder bundle and `sys.executable` is a stable path (Restart, the
desktop entry). `--install-desktop-entry` adds it to the application menu. Needs only sh, tail,
tar and gzip on the user's machine.

Usage: `python packaging/make_run.py [dist/llmlb] [OUT.run]` (packaging/build_bundle.sh runs it).
"""

from __future__ import annotations

import hashlib
import platform
import re
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEADER = """#!/bin/sh
# llmlb @VERSION@ for Linux (@ARCH@): the whole app in one file. The first start unpacks it
# (@SIZE@ MB) into ~/.cache/llmlb/app/@ID@/; later starts run from there at once.
#   ./@NAME@ [llmlb's arguments]     e.g. --version, --self-test, serve
#   ./@NAME@ --install-desktop-entry add it to this user's application menu
# An older version's folder in ~/.cache/llmlb/app/ may be deleted once it is no longer used.
set -eu
id="@ID@"
offset=@OFFSET@
self=$(readlink -f "$0")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/llmlb/app"
dir="$cache/$id"
if [ ! -d "$dir" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.unpacking.XXXXXX")
    echo "llmlb: unpacking into $dir (only the first time)" >&2
    if ! tail -c +$((offset + 1)) "$self" | tar -xzf - -C "$tmp"; then
        rm -rf "$tmp"
        echo "llmlb: cannot unpack into $cache (is the disk full?)" >&2
        exit 1
    fi
    # Another start may have finished first: keep its folder (a folder there is complete).
    if [ -d "$dir" ]; then rm -rf "$tmp"; else mv "$tmp" "$dir" || rm -rf "$tmp"; fi
fi
if [ "${1:-}" = "--install-desktop-entry" ]; then
    exec "$dir/llmlb/install-desktop-entry.sh" "$self"
fi
exec "$dir/llmlb/llmlb" "$@"
"""
OFFSET_WIDTH = 12  # the header's length, in a fixed width: writing it in keeps that length


def version() -> str:
    """app.__version__, read without importing the app."""
    text = (ROOT / "app" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'__version__ = "([^"]+)"', text)
    assert found, "app/__init__.py has no __version__"
    return found.group(1)


def make(bundle: Path, out: Path) -> Path:
    """Write the .run for the one-folder `bundle` to `out`; returns `out`."""
    if not (bundle / "llmlb").is_file():
        raise SystemExit(f"make_run: {bundle}/llmlb not found; build the bundle first")
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "llmlb.tar.gz"
        # Level 6: within a few % of 9's size at a fraction of its time.
        with tarfile.open(payload, "w:gz", compresslevel=6) as tar:
            tar.add(bundle, arcname="llmlb")
        digest = hashlib.sha256()
        with payload.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        values = {
            "VERSION": version(),
            "ARCH": platform.machine(),
            "NAME": out.name,
            "ID": f"{version()}-{digest.hexdigest()[:12]}",
            "SIZE": str(sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) >> 20),
            "OFFSET": " " * OFFSET_WIDTH,
        }
        header = re.sub(r"@(\w+)@", lambda m: values[m.group(1)], HEADER).encode()
        # Same width, so the same length; padded with trailing blanks (a leading 0 is octal).
        values["OFFSET"] = str(len(header)).ljust(OFFSET_WIDTH)
        header = re.sub(r"@(\w+)@", lambda m: values[m.group(1)], HEADER).encode()
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            f.write(header)
            with payload.open("rb") as src:
                while block := src.read(1 << 20):
                    f.write(block)
    out.chmod(0o755)
    return out


if __name__ == "__main__":
    bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "llmlb"
    name = f"llmlb-{version()}-linux-{platform.machine()}.run"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else bundle.parent / name
    print(make(bundle, out))
