"""Japanese text that never shows as boxes: where no installed font covers it, the font shipped
in the bundle's fonts/ folder is registered and used as the UI font's fallback."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics
from PySide6.QtWidgets import QApplication

from app.core.paths import resource_root

log = logging.getLogger(__name__)

# Kanji, hiragana and katakana: what the Japanese UI is written in.
SAMPLE = "設定 モデルハブ"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def bundled_fonts() -> Path:
    """The folder the bundle ships its fonts in (packaging/build_bundle.sh fills it)."""
    return resource_root() / "fonts"


def missing_glyphs(font: QFont, text: str = SAMPLE) -> str:
    """The characters of `text` that `font` (with its fallbacks) cannot draw."""
    metrics = QFontMetrics(font)
    return "".join(c for c in text if not c.isspace() and not metrics.inFontUcs4(ord(c)))


def ensure_japanese(app: QApplication, folder: Path | None = None) -> str | None:
    """Give the UI font a fallback for Japanese when no installed font covers it; the family
    registered from `folder` (default: the bundle's fonts), or None when none was needed."""
    if not missing_glyphs(app.font()):
        return None  # the system has one (the usual case on a desktop with Japanese)
    folder = bundled_fonts() if folder is None else folder
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in FONT_SUFFIXES)
    for path in paths:
        font_id = QFontDatabase.addApplicationFont(str(path))
        families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
        if not families:
            log.warning("cannot load the font %s", path)
            continue
        font = app.font()
        # The app font's family list carries the fallback for widgets that keep the app font;
        # the substitutions cover those that name the default or the fixed-width family.
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        for family in {font.family(), fixed}:
            QFont.insertSubstitutions(family, families)
        font.setFamilies([font.family(), *families])
        app.setFont(font)
        if not missing_glyphs(app.font()):
            log.info("Japanese text uses the bundled font %s (%s)", families[0], path.name)
            return families[0]
    log.warning(
        "no font covers Japanese text (%s): install one, e.g. fonts-noto-cjk on Debian",
        missing_glyphs(app.font()),
    )
    return None
