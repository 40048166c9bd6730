"""The self-test's render check tells a page that draws from one that is blank or empty."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.ui.render_check import render_problem


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
