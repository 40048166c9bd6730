"""Convert resources/icon.png to the icon a platform's bundle wants: `.ico` (Windows) or
`.icns` (macOS). Both formats may hold PNG images, which Qt scales and encodes, so neither
Pillow nor Apple's iconutil is needed. build.spec runs it at build time.

Usage: `python packaging/platform_icon.py OUT.ico|OUT.icns`.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage

ROOT = Path(__file__).resolve().parents[1]
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # what Windows picks from for menus, taskbar, Explorer
ICNS_TYPES = (("icp4", 16), ("icp5", 32), ("icp6", 64), ("ic07", 128), ("ic08", 256))


def png(image: QImage, size: int) -> bytes:
    """`image` scaled to size x size, as PNG bytes."""
    scaled = image.scaled(
        size, size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert scaled.save(buffer, "PNG")
    return bytes(data.data())


def ico(image: QImage) -> bytes:
    """A Windows icon: one PNG entry per size (PNG entries work since Windows Vista)."""
    images = [png(image, size) for size in ICO_SIZES]
    offset = 6 + 16 * len(images)
    head = struct.pack("<HHH", 0, 1, len(images))
    entries, body = b"", b""
    for size, data in zip(ICO_SIZES, images, strict=True):
        side = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        body += data
    return head + entries + body


def icns(image: QImage) -> bytes:
    """A macOS icon: PNG-encoded entries, each its 4-letter type, length and data."""
    body = b""
    for kind, size in ICNS_TYPES:
        data = png(image, size)
        body += kind.encode() + struct.pack(">I", 8 + len(data)) + data
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def convert(out: Path, source: Path = ROOT / "resources" / "icon.png") -> None:
    """Write `source` as `out`, in the format its suffix names."""
    image = QImage(str(source))
    if image.isNull():
        raise SystemExit(f"platform_icon: cannot read {source}")
    writers = {".ico": ico, ".icns": icns}
    if out.suffix not in writers:
        raise SystemExit(f"platform_icon: {out.name}: .ico or .icns only")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(writers[out.suffix](image))


if __name__ == "__main__":
    app = QGuiApplication(sys.argv[:1])
    convert(Path(sys.argv[1]))
