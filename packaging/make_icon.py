"""Draw the app icon (resources/icon.png, 256x256) with Qt, offscreen.

Run from the repo root: `.venv/bin/python packaging/make_icon.py [out.png]`.
The result is committed; rerun only to change the design.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QGuiApplication,
    QImage,
    QLinearGradient,
    QPainter,
    QPen,
)

SIZE = 256


def draw(size: int = SIZE) -> QImage:
    """A rounded blue square, a small node graph (three nodes feeding one), and "LB"."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    s = size / 256.0
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)

    gradient = QLinearGradient(0, 0, 0, size)
    gradient.setColorAt(0.0, QColor("#3b82f6"))
    gradient.setColorAt(1.0, QColor("#1d4ed8"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(gradient))
    margin = 8 * s
    p.drawRoundedRect(QRectF(margin, margin, size - 2 * margin, size - 2 * margin), 48 * s, 48 * s)

    # node graph in the top half: one balancer node fanning out to three workers
    hub = QPointF(128 * s, 52 * s)
    workers = [QPointF(x * s, 108 * s) for x in (72, 128, 184)]
    edge = QPen(QColor(255, 255, 255, 200), 6 * s)
    edge.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(edge)
    for w in workers:
        p.drawLine(hub, w)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("white"))
    p.drawEllipse(hub, 16 * s, 16 * s)
    for w in workers:
        p.drawEllipse(w, 12 * s, 12 * s)

    # "LB" in the bottom half
    font = QFont()
    font.setFamilies(["DejaVu Sans", "Helvetica", "Arial", "sans-serif"])
    font.setBold(True)
    font.setPixelSize(int(92 * s))
    p.setFont(font)
    p.setPen(QColor("white"))
    p.drawText(QRectF(0, 124 * s, size, 116 * s), Qt.AlignmentFlag.AlignCenter, "LB")
    p.end()
    return image


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parents[1] / "resources" / "icon.png"
    out = Path(argv[1]) if len(argv) > 1 else default
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not draw().save(str(out), "PNG"):
        print(f"make_icon: cannot write {out}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
