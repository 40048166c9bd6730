"""The request history as a table model (newest first), and how its figures read."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from app.core.wire import HistoryEntry, HistoryRow
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.table_model import Index, TableModel
from app.ui.theme import state_colors

HEADERS = [
    QT_TR_NOOP("Time"),
    QT_TR_NOOP("Model"),
    QT_TR_NOOP("Node"),
    QT_TR_NOOP("API"),
    QT_TR_NOOP("Status"),
    QT_TR_NOOP("Tokens in / out"),
    QT_TR_NOOP("TTFT"),
    QT_TR_NOOP("Duration"),
    QT_TR_NOOP("Client"),
]
STATUS_COLUMN = 4
KEPT_ROWS = 5000  # rows held at most (older pages are fetched again on demand)


def failed(row: HistoryRow) -> bool:
    """Whether the client did not get a whole answer."""
    return row["status"] >= 400 or bool(row["error"])


def human_ms(ms: float | None) -> str:
    """1234.5 → '1.23 s', 85 → '85 ms'."""
    if ms is None:
        return "—"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def human_seconds(seconds: float) -> str:
    """How long something has waited or run: '4 s', '2 min 5 s'."""
    seconds = max(0, int(seconds))
    if seconds >= 60:
        return tr("{m} min {s} s").format(m=seconds // 60, s=seconds % 60)
    return tr("{s} s").format(s=seconds)


def when(at: float) -> str:
    """The time of day for today's rows, with the date for older ones."""
    local = time.localtime(at)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%m-%d %H:%M:%S", local)


def tokens(row: HistoryRow) -> str:
    """'12 / 34', with a dash for a count the answer did not report."""
    cells = ["—" if n is None else str(n) for n in (row["tokens_in"], row["tokens_out"])]
    return " / ".join(cells)


def status_text(row: HistoryRow) -> str:
    """The status code, with a word for a failure (not its colour alone)."""
    return tr("{status} failed").format(status=row["status"]) if failed(row) else str(row["status"])


class HistoryModel(TableModel):
    """The history rows shown, newest first, with the node names the window knows."""

    headers = HEADERS

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[HistoryEntry] = []
        self.node_names: dict[str, str] = {}

    def newest_id(self) -> int | None:
        """The id of the newest row shown."""
        return self.rows[0]["id"] if self.rows else None

    def oldest_id(self) -> int | None:
        """The id of the oldest row shown ("Load older" asks for what came before)."""
        return self.rows[-1]["id"] if self.rows else None

    def prepend(self, rows: list[HistoryEntry]) -> None:
        """Add newer rows (newest first) at the top; rows already shown are skipped."""
        newest = self.newest_id()
        fresh = [r for r in rows if newest is None or r["id"] > newest]
        if not fresh:
            return
        self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
        self.rows[:0] = fresh
        self.endInsertRows()
        if len(self.rows) > KEPT_ROWS:
            self.beginRemoveRows(QModelIndex(), KEPT_ROWS, len(self.rows) - 1)
            del self.rows[KEPT_ROWS:]
            self.endRemoveRows()

    def append(self, rows: list[HistoryEntry]) -> None:
        """Add older rows (newest first) at the bottom."""
        oldest = self.oldest_id()
        older = [r for r in rows if oldest is None or r["id"] < oldest]
        if not older:
            return
        start = len(self.rows)
        self.beginInsertRows(QModelIndex(), start, start + len(older) - 1)
        self.rows.extend(older)
        self.endInsertRows()

    def set_node_names(self, names: dict[str, str]) -> None:
        """Name nodes by what the user called them (an id for a node no longer known)."""
        if names != self.node_names:
            self.node_names = names
            if self.rows:
                column = 2
                self.dataChanged.emit(self.index(0, column), self.index(len(self.rows) - 1, column))

    def node_name(self, node_id: str | None) -> str:
        """A node's name, its id when the window does not know it, a dash for none."""
        if not node_id:
            return "—"
        return self.node_names.get(node_id) or node_id

    def row_count(self) -> int:
        """How many rows the table shows now."""
        return len(self.rows)

    def cells(self, row: HistoryEntry) -> list[str]:
        """One row as the table shows it."""
        return [
            when(row["at"]),
            row["model"] or "—",
            self.node_name(row["node_id"]),
            row["endpoint"],
            status_text(row),
            tokens(row),
            human_ms(row["latency_ms"]),
            human_ms(row["duration_ms"]),
            row["client"] or "—",
        ]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cells(row)[index.column()]
        if index.column() == STATUS_COLUMN and failed(row):
            # Asked at each paint: follows a live switch of the colour scheme.
            if role == Qt.ItemDataRole.BackgroundRole:
                return QColor(state_colors("error")[1])
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor(state_colors("error")[0])
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["at"]))
        return None
