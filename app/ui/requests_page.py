"""The Requests page: the 7-day history newest first, one request in detail, the live queue."""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import HistoryEntry
from app.ui.alive import while_alive
from app.ui.asyncs import spawn
from app.ui.i18n import tr
from app.ui.queue_panel import QueuePanel
from app.ui.request_detail import RequestDetailPane
from app.ui.requests_model import HistoryModel
from app.ui.state import UiState
from app.ui.theme import set_property

PAGE = 100  # rows a first load or "Load older" fetches
NEWER_PAGE = 50  # rows asked for when requests finish (most times a few are new)
NEWER_PAGES = 10  # pages at most after a long absence; the rest is reached by scrolling


class RequestsPage(QWidget):
    """History table (new rows at the top as requests finish, older ones on demand), the
    picked request's detail beside it, and the queue below."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.client = state.client
        layout = QVBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        self.model = HistoryModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName(tr("request history"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._picked)
        column.addWidget(self.table, 1)
        below = QHBoxLayout()
        self.older = QPushButton(tr("Load older"))
        self.older.setAccessibleName(tr("Load older requests"))
        self.older.clicked.connect(self.load_older)
        self.status = QLabel(tr("Loading the request history…"))
        self.status.setWordWrap(True)
        set_property(self.status, "tone", "muted")
        below.addWidget(self.older)
        below.addWidget(self.status, 1)
        column.addLayout(below)
        self.detail = RequestDetailPane()
        split.addWidget(left)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        self.queue = QueuePanel(state)
        layout.addWidget(self.queue)
        self.loaded = False  # fetched once shown: nothing is asked for a page never opened
        self.stale = False  # requests finished while hidden: fetched when shown again
        self.busy = False
        self.again = False  # requests finished during a fetch: fetch once more after it
        self.want_older = False  # "Load older" pressed during a fetch: load them after it
        self.no_older = False
        self._detail_task: asyncio.Task[Any] | None = None
        # Bound methods, not lambdas: Qt drops the connection when the page is deleted (a
        # language switch builds the window again), where a lambda would call a dead page.
        state.trafficRecorded.connect(self._traffic)
        state.nodesChanged.connect(self._names)
        self._names()

    def showEvent(self, event: QShowEvent) -> None:
        """First shown: load the history; shown again after traffic: fetch what is new."""
        super().showEvent(event)
        if not self.loaded or self.stale:
            self.fetch_newer()

    def _traffic(self, _event: object) -> None:
        self.fetch_newer()

    def _names(self) -> None:
        self.model.set_node_names({n["id"]: n["name"] or n["id"] for n in self.state.nodes})

    # -- the history ------------------------------------------------------------------
    def fetch_newer(self) -> None:
        """Add what finished since the newest row shown (everything, the first time)."""
        if not self.isVisible():
            self.stale = self.loaded
            return
        if self.busy:
            self.again = True
            return
        self.busy, self.stale, self.again = True, False, False
        spawn(
            self._newer(),
            on_error=while_alive(self, self._failed),
            on_done=while_alive(self, self._got_newer),
        )

    async def _newer(self) -> list[HistoryEntry]:
        newest = self.model.newest_id()
        if newest is None:
            return await self.client.requests(limit=PAGE)
        got: list[HistoryEntry] = []
        before: int | None = None
        for _ in range(NEWER_PAGES):
            page = await self.client.requests(before=before, limit=NEWER_PAGE)
            fresh = [r for r in page if r["id"] > newest]
            got += fresh
            if len(fresh) < len(page) or len(page) < NEWER_PAGE:
                break
            before = page[-1]["id"]
        return got

    def _got_newer(self, rows: list[HistoryEntry]) -> None:
        first = not self.loaded
        self.loaded = True
        empty = not self.model.rows
        self.model.prepend(rows)
        if empty and rows:
            self.table.resizeColumnsToContents()
        if first and len(rows) < PAGE:
            self.no_older = True  # the whole history fitted in one page
        self._say()
        self._next()

    def load_older(self) -> None:
        """Fetch the page of requests before the oldest row shown."""
        oldest = self.model.oldest_id()
        if oldest is None:
            return
        if self.busy:  # one fetch at a time: this one follows
            self.want_older = True
            return
        self.busy, self.want_older = True, False
        self.older.setEnabled(False)
        spawn(
            self.client.requests(before=oldest, limit=PAGE),
            on_error=while_alive(self, self._failed),
            on_done=while_alive(self, self._got_older),
        )

    def _got_older(self, rows: list[HistoryEntry]) -> None:
        self.model.append(rows)
        self.no_older = len(rows) < PAGE
        self._say()
        self._next()

    def _next(self) -> None:
        """After a fetch: what was asked for meanwhile."""
        self.busy = False
        if self.again:
            self.fetch_newer()
        elif self.want_older:
            self.load_older()

    def _failed(self, reason: str) -> None:
        self.busy = self.again = self.want_older = False
        self.status.setText(tr("The history could not be read: {reason}").format(reason=reason))
        self.older.setEnabled(self.model.oldest_id() is not None)

    def _say(self) -> None:
        count = self.model.rowCount()
        if not count:
            text = tr("No requests in the last 7 days yet. They show here as they finish.")
        elif self.no_older:
            text = tr("Requests shown: {n}, all of the last 7 days.").format(n=count)
        else:
            text = tr("Requests shown: the newest {n}.").format(n=count)
        self.status.setText(text)
        self.older.setEnabled(bool(count) and not self.no_older)

    # -- the detail -------------------------------------------------------------------
    def _picked(self, current: QModelIndex | QPersistentModelIndex, _previous: object) -> None:
        if not current.isValid() or current.row() >= len(self.model.rows):
            return
        row = self.model.rows[current.row()]
        if self.detail.shown is not None and self.detail.shown["id"] == row["id"]:
            return
        if self._detail_task is not None:
            self._detail_task.cancel()  # a later pick wins over an answer still on its way
        self._detail_task = spawn(
            self.client.request(row["id"]),
            on_error=while_alive(self, self.detail.show_problem),
            on_done=while_alive(
                self, lambda d: self.detail.show_detail(d, self.model.node_name(d["node_id"]))
            ),
        )
