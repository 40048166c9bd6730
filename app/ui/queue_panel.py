"""The live queue: requests waiting for a slot (position, waited, ETA) and those running."""

from __future__ import annotations

import asyncio
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import QueueJson
from app.ui.alive import while_alive
from app.ui.asyncs import spawn
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.requests_model import human_seconds
from app.ui.state import UiState
from app.ui.theme import set_property

TICK_MS = 1000  # refetched this often while shown and something waits or runs
WAITING = [QT_TR_NOOP("Model"), QT_TR_NOOP("Position"), QT_TR_NOOP("Waited"), QT_TR_NOOP("ETA")]
RUNNING = [QT_TR_NOOP("Model"), QT_TR_NOOP("Node"), QT_TR_NOOP("Running for")]


def _table(headers: list[str], name: str) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels([tr(h) for h in headers])
    table.setAccessibleName(name)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setTabKeyNavigation(False)  # Tab moves on to the next control, arrows move in it
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.setMaximumHeight(130)
    return table


class QueuePanel(QWidget):
    """GET /v0/queue as two small tables, refetched when requests finish and, while shown
    with something queued or running, every second (no timer runs for an idle queue)."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel(tr("Queue: nothing waiting or running."))
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        row = QHBoxLayout()
        waiting = QVBoxLayout()
        waiting.addWidget(QLabel(tr("Waiting")))
        self.waiting = _table(WAITING, tr("requests waiting"))
        waiting.addWidget(self.waiting)
        running = QVBoxLayout()
        running.addWidget(QLabel(tr("Running")))
        self.running = _table(RUNNING, tr("requests running"))
        running.addWidget(self.running)
        row.addLayout(waiting, 1)
        row.addLayout(running, 1)
        layout.addLayout(row)
        self.timer = QTimer(self)  # public: tests see whether it runs
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.refresh)
        self.last: QueueJson | None = None
        self._task: asyncio.Task[QueueJson] | None = None
        state.trafficRecorded.connect(self._traffic)  # bound: dropped with the panel

    def _traffic(self, _event: object) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Fetch the queue now (one fetch at a time; only while the panel is shown)."""
        if not self.isVisible() or (self._task is not None and not self._task.done()):
            return
        self._task = spawn(
            self.state.client.queue(),
            on_error=while_alive(self, self._failed),
            on_done=while_alive(self, self.show_queue),
        )

    def show_queue(self, queue: QueueJson) -> None:
        """Fill both tables; keep the timer running only while something is queued or running."""
        self.last = queue
        now = time.time()
        names = {n["id"]: n["name"] or n["id"] for n in self.state.nodes}
        waiting = [
            [
                e["model"],
                str(e["position"] or "—"),
                human_seconds(now - e["since"]),
                "—" if e["eta_seconds"] is None else "~" + human_seconds(e["eta_seconds"]),
            ]
            for e in queue["waiting"]
        ]
        running = [
            [
                e["model"],
                names.get(e["node_id"] or "", e["node_id"] or "—"),
                human_seconds(now - e["since"]),
            ]
            for e in queue["running"]
        ]
        _fill(self.waiting, waiting)
        _fill(self.running, running)
        set_property(self.summary, "tone", None)
        self.summary.setText(
            tr("Queue: {waiting} waiting, {running} running.").format(
                waiting=len(waiting), running=len(running)
            )
            if waiting or running
            else tr("Queue: nothing waiting or running.")
        )
        busy = bool(waiting or running) and self.isVisible()
        if busy and not self.timer.isActive():
            self.timer.start()
        elif not busy:
            self.timer.stop()

    def _failed(self, reason: str) -> None:
        self.timer.stop()
        self.summary.setText(tr("The queue could not be read: {reason}").format(reason=reason))
        set_property(self.summary, "tone", "error")

    def showEvent(self, event: QShowEvent) -> None:
        """Shown: read the queue now."""
        super().showEvent(event)
        self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        """Hidden (another page): no more ticks until shown again."""
        super().hideEvent(event)
        self.timer.stop()


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    """Replace a table's rows, keeping the selected row where it still exists."""
    current = table.currentRow()
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = table.item(r, c)
            if item is None:
                table.setItem(r, c, QTableWidgetItem(text))
            elif item.text() != text:
                item.setText(text)
    if 0 <= current < len(rows):
        table.setCurrentCell(current, max(0, table.currentColumn()))
