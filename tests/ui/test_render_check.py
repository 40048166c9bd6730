"""The self-test's checks tell a page that draws from one that is blank or empty, and a
Japanese translation that loads from one that is missing (a bundle built without its .qm)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.ui import i18n
from app.ui.render_check import render_problem, translation_problem


def test_a_page_with_text_renders(qapp: QApplication) -> None:
    label = QLabel("Overview")
    label.resize(200, 80)
    assert render_problem(label) is None


def test_a_blank_page_is_reported(qapp: QApplication) -> None:
    blank = QWidget()
    blank.resize(200, 80)
    assert render_problem(blank) == "renders blank (200x80, one colour, no text)"


def test_an_empty_page_is_reported(qapp: QApplication) -> None:
    empty = QWidget()
    empty.resize(0, 0)
    assert render_problem(empty) == "renders as an empty picture (0x0)"


def test_a_missing_japanese_translation_is_reported(
    qapp: QApplication, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert translation_problem() is None
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path)  # no .qm and no .ts to build one from
    assert translation_problem() == (
        "the Japanese translation (app/ui/translations/llmlb_ja.qm) did not load"
    )
    assert i18n.language() == "en"  # the check leaves the language as it found it
