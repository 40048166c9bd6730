"""Log entries as a table model (newest last), each level said in words and in its colours."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from app.core.wire import LogEntry
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.table_model import Index, TableModel
from app.ui.theme import colors, state_colors

HEADERS = [QT_TR_NOOP("Time"), QT_TR_NOOP("Level"), QT_TR_NOOP("Source"), QT_TR_NOOP("Message")]
LEVEL_COLUMN = 1
KEPT = 5000  # entries held at most while tailing (the oldest go first)
LEVEL_WORDS = {
    "DEBUG": QT_TR_NOOP("debug"),
    "INFO": QT_TR_NOOP("info"),
    "WARNING": QT_TR_NOOP("warning"),
    "ERROR": QT_TR_NOOP("error"),
    "CRITICAL": QT_TR_NOOP("critical"),
}
# A level's cell colours: a theme state (text, background) pair, chosen for contrast there.
LEVEL_STATES = {"WARNING": "registered", "ERROR": "error", "CRITICAL": "error"}


def level_word(level: str) -> str:
    """The level as the table says it (an unknown one as it came)."""
    return tr(LEVEL_WORDS[level]) if level in LEVEL_WORDS else level


def key(entry: LogEntry) -> tuple[float, str, str, str]:
    """What tells two entries apart (a tail's next fetch starts at the last one's time)."""
    return (entry["at"], entry["level"], entry["logger"], entry["message"])


class LogsModel(TableModel):
    """The entries shown, oldest first."""

    headers = HEADERS

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[LogEntry] = []

    def replace(self, entries: list[LogEntry]) -> None:
        """Show these entries instead."""
        self.beginResetModel()
        self.entries = entries[-KEPT:]
        self.endResetModel()

    def extend(self, entries: list[LogEntry]) -> int:
        """Add newer entries at the bottom (those already shown are skipped); how many."""
        last = self.entries[-1]["at"] if self.entries else None
        seen = {key(e) for e in self.entries if e["at"] == last}
        fresh = [
            e
            for e in entries
            if last is None or e["at"] > last or (e["at"] == last and key(e) not in seen)
        ]
        if not fresh:
            return 0
        start = len(self.entries)
        self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
        self.entries.extend(fresh)
        self.endInsertRows()
        if len(self.entries) > KEPT:
            extra = len(self.entries) - KEPT
            self.beginRemoveRows(QModelIndex(), 0, extra - 1)
            del self.entries[:extra]
            self.endRemoveRows()
        return len(fresh)

    def row_count(self) -> int:
        """How many rows the table shows now."""
        return len(self.entries)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.entries):
            return None
        entry = self.entries[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return time.strftime("%m-%d %H:%M:%S", time.localtime(entry["at"]))
            if column == LEVEL_COLUMN:
                return level_word(entry["level"])
            if column == 2:
                return entry["logger"]
            return entry["message"].split("\n", 1)[0]  # the whole of it in the tooltip
        if role == Qt.ItemDataRole.ToolTipRole and column == 3:
            return entry["message"] + ("\n\n" + entry["exc"] if "exc" in entry else "")
        if column == LEVEL_COLUMN and role in (
            Qt.ItemDataRole.ForegroundRole,
            Qt.ItemDataRole.BackgroundRole,
        ):
            # Asked at each paint: follows a live switch of the colour scheme.
            state = LEVEL_STATES.get(entry["level"])
            if state is None:
                if entry["level"] == "DEBUG" and role == Qt.ItemDataRole.ForegroundRole:
                    return QColor(colors()["muted"])
                return None
            fg, bg = state_colors(state)
            return QColor(fg if role == Qt.ItemDataRole.ForegroundRole else bg)
        return None
