"""A node's detail panel on the Nodes page: its state in words (with why), its last day of
traffic and GPU use, its recent requests and its log tail, fetched for the selected node when
the panel is shown and again as traffic is recorded (coalesced, never polled)."""

from __future__ import annotations

import asyncio
import time

import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import HistoryEntry, LogsJson, NodeJson, StatsJson
from app.ui.asyncs import spawn
from app.ui.client import ApiError
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.node_detail import detail_lines
from app.ui.overview_graphs import Graph, gpu_line, request_lines
from app.ui.state import UiState

MIN_GAP_MS = 3000  # at most one fetch this often while traffic events come
RECENT = 20  # requests listed
LOG_TAIL = 50  # log lines shown
REQUEST_COLUMNS = (
    QT_TR_NOOP("Time"),
    QT_TR_NOOP("Model"),
    QT_TR_NOOP("Status"),
    QT_TR_NOOP("Duration"),
)


class NodePanel(QTabWidget):
    """The selected node: Details (words), Activity (graphs, recent requests) and Log."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.node: NodeJson | None = None
        self.setAccessibleName(tr("node details"))
        self.text = QTextBrowser()
        self.text.setAccessibleName(tr("node details"))
        self.addTab(self.text, tr("Details"))
        self.addTab(self._activity(), tr("Activity"))
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setAccessibleName(tr("node log, newest last"))
        self.addTab(self.log, tr("Log"))
        self._stale = False
        self._fetching = False
        self._gap = QTimer(self)
        self._gap.setSingleShot(True)
        self._gap.setInterval(MIN_GAP_MS)
        self._gap.timeout.connect(self._gap_over)
        # A method, not a lambda: Qt drops it with this widget (a language switch rebuilds it).
        state.trafficRecorded.connect(self._traffic)
        self.show_node(None, False)

    def _activity(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        graphs = QHBoxLayout()
        self.requests_graph = Graph(tr("Requests a minute, last 24 h"), height=130)
        self.gpu_graph = Graph(tr("GPU use, last 24 h (%)"), " %", height=130)
        graphs.addWidget(self.requests_graph)
        graphs.addWidget(self.gpu_graph)
        layout.addLayout(graphs)
        self.requests_caption = QLabel(tr("Recent requests"))
        self.requests_caption.setObjectName("who")
        layout.addWidget(self.requests_caption)
        self.requests = QTableWidget(0, len(REQUEST_COLUMNS))
        self.requests.setAccessibleName(tr("recent requests on this node"))
        self.requests.setHorizontalHeaderLabels([tr(c) for c in REQUEST_COLUMNS])
        self.requests.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.requests.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.requests.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.requests.verticalHeader().hide()
        self.requests.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.requests, 1)
        return page

    def show_node(self, node: NodeJson | None, local: bool) -> None:
        """Show this node (None: ask for one); a different node than before is fetched."""
        changed = (node and node["id"]) != (self.node and self.node["id"])
        self.node = node
        if node is None:
            self.text.setPlainText(tr("Select a node to see its details."))
        else:
            self.text.setPlainText("\n".join(detail_lines(node, local)))
        if changed:
            self._clear()
            self._gap.stop()  # another node: its figures now, whatever was fetched just before
            self.want()

    def _clear(self) -> None:
        self.requests_graph.set_lines([])
        self.gpu_graph.set_lines([])
        self.requests.setRowCount(0)
        self.log.setPlainText("")

    def showEvent(self, event: QShowEvent) -> None:
        """Shown: fetch what changed while hidden."""
        super().showEvent(event)
        self.want()

    def _traffic(self, _event: object) -> None:
        self.want()

    def want(self) -> None:
        """Fetch the node's activity now, or when the gap since the last fetch ends; while
        hidden, once shown."""
        self._stale = True
        if self.node is None or not self.isVisible() or self._fetching or self._gap.isActive():
            return
        self._stale = False
        self._fetching = True
        self._gap.start()
        spawn(self._fetch(self.node["id"]), on_error=self._failed)

    def _gap_over(self) -> None:
        if self._stale:
            self.want()

    async def _fetch(self, node_id: str) -> None:
        c = self.state.client
        try:
            stats, history, logs = await asyncio.gather(
                c.stats("24h", node=node_id),
                c.requests(limit=RECENT, node=node_id),
                c.logs(source=node_id, limit=LOG_TAIL),
                return_exceptions=True,
            )
        finally:
            if shiboken6.isValid(self):
                self._fetching = False
        for answer in (stats, history, logs):
            if isinstance(answer, asyncio.CancelledError):
                raise answer
        if not shiboken6.isValid(self):
            return  # a language switch rebuilt the page meanwhile
        if self.node is None or self.node["id"] != node_id:
            self.want()  # the selection moved on while this was fetched
            return
        self._show_stats(stats)
        self._show_requests(history)
        self._show_log(logs)
        if self._stale and not self._gap.isActive():
            self.want()

    def _failed(self, reason: str) -> None:
        if not shiboken6.isValid(self):
            return
        self.requests_graph.text.setText(reason)

    def _show_stats(self, stats: StatsJson | BaseException) -> None:
        if isinstance(stats, BaseException):
            why = stats.message if isinstance(stats, ApiError) else str(stats)
            self.requests_graph.text.setText(
                tr("The node's traffic is unavailable: {reason}").format(reason=why)
            )
            return
        self.requests_graph.set_lines(request_lines(stats)[:1], stats["since"])
        self.gpu_graph.set_lines(gpu_line(stats), stats["since"])

    def _show_requests(self, history: list[HistoryEntry] | BaseException) -> None:
        rows = [] if isinstance(history, BaseException) else history
        self.requests.setRowCount(len(rows))
        for i, row in enumerate(rows):
            cells = (
                time.strftime("%H:%M:%S", time.localtime(row["at"])),
                row["model"],
                str(row["status"]),
                tr("{ms} ms").format(ms=f"{row['duration_ms']:.0f}"),
            )
            for j, cell in enumerate(cells):
                self.requests.setItem(i, j, QTableWidgetItem(cell))
        if isinstance(history, BaseException):
            why = history.message if isinstance(history, ApiError) else str(history)
            self.requests.setRowCount(1)
            said = tr("Recent requests are unavailable: {reason}").format(reason=why)
            self.requests.setItem(0, 0, QTableWidgetItem(said))

    def _show_log(self, logs: LogsJson | BaseException) -> None:
        if isinstance(logs, ApiError) and logs.code == "logs_not_reachable":
            self.log.setPlainText(
                tr("This node's log cannot be read through llmlb: it is an external server.")
            )
        elif isinstance(logs, BaseException):
            why = logs.message if isinstance(logs, ApiError) else str(logs)
            said = tr("The node's log could not be fetched: {reason}").format(reason=why)
            self.log.setPlainText(said)
        elif not logs["entries"]:
            self.log.setPlainText(tr("The node's log is empty."))
        else:
            self.log.setPlainText(
                "\n".join(
                    f"{time.strftime('%H:%M:%S', time.localtime(e['at']))} {e['level']:<7} "
                    f"{e['logger']}: {e['message']}"
                    for e in logs["entries"]
                )
            )
            bar = self.log.verticalScrollBar()
            bar.setValue(bar.maximum())  # the newest line in view
