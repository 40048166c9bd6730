"""A message block's height follows its text and font: the heights it remembers for speed
(TextBlock.heightForWidth) are forgotten when either changes, so no text is clipped."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.ui.chat_widgets import TextBlock


def test_a_block_grows_with_its_text_its_font_and_its_format(qapp: QApplication) -> None:
    block = TextBlock()
    block.setWordWrap(True)
    block.setText("short")
    one_line = block.heightForWidth(200)
    assert block.heightForWidth(200) == one_line  # asked again: the same
    block.setText("a longer answer streams in " * 40)
    many_lines = block.heightForWidth(200)
    assert many_lines > 5 * one_line
    assert block.heightForWidth(400) < many_lines  # wider: fewer lines
    font = block.font()
    font.setPointSizeF(font.pointSizeF() * 2)
    block.setFont(font)
    assert block.heightForWidth(200) > 1.5 * many_lines
    block.setText("# Title\n\nline one  \nline two  \nline three")
    plain = block.heightForWidth(200)
    block.setTextFormat(Qt.TextFormat.MarkdownText)  # the same text, now three lines and a title
    assert block.heightForWidth(200) > plain
