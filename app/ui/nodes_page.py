"""The Nodes page: a sortable, paged table with load colours, actions, details and export."""

from __future__ import annotations

import csv
import html
import json
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.types import NodeStatus
from app.core.wire import NodeJson
from app.ui.endpoint import public_url
from app.ui.fit import metrics_of
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.node_detail import LOCAL_NODE_STAYS, words
from app.ui.node_panel import NodePanel
from app.ui.server_dialog import ServerDialog
from app.ui.state import LIVE, UiState
from app.ui.table_model import Index, TableModel
from app.ui.theme import state_colors
from app.ui.widgets import confirm, selectable_by_keyboard

COLUMNS = ["Name", "Status", "Machine", "GPU", "Models", "Requests", "Uptime", "Tags"]
# The headers as the table shows them (COLUMNS stay English: they head the CSV export).
HEADERS = [
    QT_TR_NOOP("Name"),
    QT_TR_NOOP("Status"),
    QT_TR_NOOP("Machine"),
    QT_TR_NOOP("GPU"),
    QT_TR_NOOP("Models"),
    QT_TR_NOOP("Requests"),
    QT_TR_NOOP("Uptime"),
    QT_TR_NOOP("Tags"),
]
PAGE_SIZE = 25


def active_requests(node: NodeJson) -> int:
    """Requests the node is answering: its own figure, else the balancer's count."""
    metrics = metrics_of(node)
    return (metrics["active_requests"] if metrics else 0) or node["inflight"]


def load_level(node: NodeJson) -> str:
    """ok / high / full: the share of the node's slots in use."""
    metrics = metrics_of(node)
    slots = (metrics["slots"] if metrics else 0) or 1
    share = active_requests(node) / slots
    return "full" if share >= 1 else "high" if share >= 0.5 else "ok"


def cell_state(node: NodeJson) -> str:
    """What the status cell's colours show: an online node's load when high, else its status."""
    level = load_level(node)
    return level if node["status"] == NodeStatus.ONLINE and level != "ok" else str(node["status"])


def row_values(node: NodeJson) -> list[str | int | float]:
    """The table's cells for one node (sortable raw values)."""
    ready, total = node["ready_models"] or [0, 0]
    # From the start of the node's current run, not its first registration months ago.
    started = node.get("registered_at")
    uptime = time.time() - started if started is not None else -1.0
    metrics = metrics_of(node)
    # What its heartbeat reports now; before one, the names it registered with.
    gpus = [d["name"] for d in metrics.get("devices") or []] if metrics else []
    gpus = gpus or node.get("gpu_devices") or []
    return [
        node["name"] or node["id"],
        str(node["status"]),
        node["url"],
        ", ".join(str(g) for g in gpus) if gpus else "CPU",
        f"{ready}/{total}",
        active_requests(node),
        uptime if node["status"] in LIVE else -1.0,
        ", ".join(node["tags"]),
    ]


def human_uptime(seconds: float) -> str:
    """3725 → '1 h 2 min'."""
    if seconds < 0:
        return "—"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return tr("{h} h {m} min").format(h=minutes // 60, m=minutes % 60)
    return tr("{n} min").format(n=minutes)


class NodesModel(TableModel):
    """All nodes, sorted by one column, shown a page at a time."""

    headers = HEADERS

    def __init__(self) -> None:
        super().__init__()
        self.all: list[NodeJson] = []
        self.page = 0
        self.sort_column = 0
        self.descending = False

    def set_nodes(self, nodes: list[NodeJson]) -> None:
        """Replace the rows, keeping sort and page."""
        self.beginResetModel()
        self.all = nodes
        self._sort()
        self.page = min(self.page, self.pages() - 1)
        self.endResetModel()

    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-len(self.all) // PAGE_SIZE))

    def visible(self) -> list[NodeJson]:
        """The nodes on the current page."""
        return self.all[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]

    def set_page(self, page: int) -> None:
        """Show another page."""
        self.beginResetModel()
        self.page = max(0, min(page, self.pages() - 1))
        self.endResetModel()

    def row_count(self) -> int:
        """How many rows the table shows now."""
        return len(self.visible())

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.visible()[index.row()]
        value = row_values(node)[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == 6:
                return human_uptime(float(value))
            if index.column() == 1:  # a busy node's load in words, not by its colour alone
                load, said = cell_state(node), words(str(value))
                if load in ("high", "full"):
                    return tr("{status}, load {load}").format(status=said, load=words(load))
                return said
            return str(value)
        if role == Qt.ItemDataRole.BackgroundRole and index.column() == 1:
            return QColor(state_colors(cell_state(node))[1])  # asked at each paint: live
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            return QColor(state_colors(cell_state(node))[0])
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
            return tr("{status}, load {load}").format(
                status=words(str(value)), load=words(load_level(node))
            )
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.beginResetModel()
        self.sort_column = column
        self.descending = order == Qt.SortOrder.DescendingOrder
        self._sort()
        self.endResetModel()

    def _sort(self) -> None:
        self.all.sort(
            key=lambda n: _sort_key(row_values(n)[self.sort_column]), reverse=self.descending
        )


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value).lower())


class NodesPage(QWidget):
    """Nodes, their actions, details and export."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        self.join = QLabel()
        self.join.setTextFormat(Qt.TextFormat.RichText)
        self.join.setWordWrap(True)
        selectable_by_keyboard(self.join)  # the command is copied from the keyboard too
        layout.addWidget(self.join)
        self.model = NodesModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName(tr("nodes"))
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Tab leaves the table (arrows move in it): else Tab walks its cells and never out.
        self.table.setTabKeyNavigation(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        layout.addWidget(self.table, 2)
        bar = QHBoxLayout()
        self.prev_button = QPushButton(tr("◀ Previous"))
        self.next_button = QPushButton(tr("Next ▶"))
        self.prev_button.setAccessibleName(tr("previous page"))
        self.next_button.setAccessibleName(tr("next page"))
        self.page_label = QLabel()
        self.prev_button.clicked.connect(lambda: self._go(-1))
        self.next_button.clicked.connect(lambda: self._go(1))
        self.approve_button = QPushButton(tr("Approve"))
        self.edit_button = QPushButton(tr("Rename / tags…"))
        self.delete_button = QPushButton(tr("Delete"))
        self.export_json = QPushButton(tr("Export JSON"))
        self.export_csv = QPushButton(tr("Export CSV"))
        self.approve_button.clicked.connect(self.approve)
        self.edit_button.clicked.connect(self.edit)
        self.delete_button.clicked.connect(self.delete)
        self.export_json.clicked.connect(lambda: self._ask_export("json"))
        self.export_csv.clicked.connect(lambda: self._ask_export("csv"))
        # Two rows, so the page fits an 800 px window: paging and export, then the actions.
        for w in (self.prev_button, self.page_label, self.next_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.export_json)
        bar.addWidget(self.export_csv)
        layout.addLayout(bar)
        actions = QHBoxLayout()
        self.add_server_button = QPushButton(tr("Add a server…"))  # external OpenAI-compatible
        self.add_server_button.clicked.connect(self.open_server_dialog)
        actions.addWidget(self.add_server_button)
        for w in (self.approve_button, self.edit_button, self.delete_button):
            actions.addWidget(w)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.panel = NodePanel(state)  # the selected node: details, activity, log
        self.detail = self.panel.text
        layout.addWidget(self.panel, 2)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_detail())
        # Sorting and paging reset the model, which clears the selection without a signal:
        # keep the chosen node selected, and the buttons in step with it.
        self._chosen: str | None = None
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        self.model.modelReset.connect(self._restore_selection)
        state.nodesChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Reload rows, keeping the selected node selected."""
        self.model.set_nodes(list(self.state.nodes))
        self.page_label.setText(
            tr("page {page} of {pages}").format(page=self.model.page + 1, pages=self.model.pages())
        )
        cluster = self.state.cluster
        token = cluster["join_token"] if cluster else "…"
        discovered = cluster["discovered"] if cluster else []
        # Rich text for <code>: everything the balancer or a node sent is escaped first.
        # The token goes in the environment, not on the command line, where `ps` shows it.
        # The address the balancer announces on the LAN: 127.0.0.1 is another machine itself.
        command = (
            f"<code>LLMLB_JOIN_TOKEN={html.escape(str(token))} "
            f"llmlb node --balancer {html.escape(public_url(self.state))}</code>"
        )
        text = html.escape(tr("Join another machine: {command}")).format(command=command)
        if discovered:
            names = ", ".join(
                f"{html.escape(d['name'])} ({html.escape(str(d['url']))})" for d in discovered
            )
            text += "<br>" + html.escape(tr("On the LAN, not joined yet: {names}")).format(
                names=names
            )
        self.join.setText(text)
        self._show_detail()

    def _remember_selection(self) -> None:
        node = self.selected()
        self._chosen = node["id"] if node is not None else None

    def _restore_selection(self) -> None:
        for row, node in enumerate(self.model.visible()):
            if node["id"] == self._chosen:
                self.table.selectRow(row)
                break
        self._show_detail()

    def _go(self, step: int) -> None:
        self.model.set_page(self.model.page + step)
        self.page_label.setText(
            tr("page {page} of {pages}").format(page=self.model.page + 1, pages=self.model.pages())
        )

    def selected(self) -> NodeJson | None:
        """The selected node, if any."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        visible = self.model.visible()
        return visible[rows[0].row()] if rows[0].row() < len(visible) else None

    def _show_detail(self) -> None:
        node = self.selected()
        # Approve means something only for a node that waits for it.
        self.approve_button.setEnabled(bool(node and node["status"] == NodeStatus.PENDING))
        self.edit_button.setEnabled(node is not None)
        # The balancer refuses to delete this computer's running node (it would only join
        # again under a new id): say so instead of offering it.
        local = bool(node and node["kind"] == "local" and node["status"] != NodeStatus.OFFLINE)
        self.delete_button.setEnabled(node is not None and not local)
        self.delete_button.setToolTip(tr(LOCAL_NODE_STAYS) if local else "")
        self.panel.show_node(node, local)

    def open_server_dialog(self) -> ServerDialog:
        """The dialog that adds an external OpenAI-compatible server as a node."""
        self.server_dialog = ServerDialog(self.state, self)
        self.server_dialog.open()
        return self.server_dialog

    def approve(self) -> None:
        """Let the selected pending node in."""
        node = self.selected()
        if node is not None:
            self.state.approve_node(node["id"])

    def edit(self) -> None:
        """Rename the selected node and set its tags."""
        node = self.selected()
        if node is None:
            return
        name, ok = QInputDialog.getText(self, tr("Rename node"), tr("Name:"), text=node["name"])
        if not ok:
            return
        tags, ok = QInputDialog.getText(
            self, tr("Tags"), tr("Tags (comma-separated):"), text=", ".join(node["tags"])
        )
        if ok:
            self.state.update_node(node["id"], name, [t.strip() for t in tags.split(",")])

    def delete(self) -> None:
        """Forget the selected node, after confirmation."""
        node = self.selected()
        if node is not None:
            box = confirm(
                self,
                tr("Delete node"),
                (
                    tr("Delete {name}? llmlb stops sending it requests; add it again to use it.")
                    if node["kind"] == "external"  # an added server never joins by itself
                    else tr("Delete {name}? It must join again to serve.")
                ).format(name=node["name"]),
                lambda: self.state.delete_node(node["id"]),
            )
            box.setTextFormat(Qt.TextFormat.PlainText)  # the name is the node's own text

    def _ask_export(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("Export nodes"), f"nodes.{kind}")
        if path:
            self.export(Path(path), kind)

    def export(self, path: Path, kind: str) -> None:
        """Write every node (all pages) as JSON or CSV."""
        if kind == "json":
            path.write_text(json.dumps(self.model.all, indent=2), encoding="utf-8")
            return
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", *COLUMNS])
            for node in self.model.all:
                values = row_values(node)
                values[6] = human_uptime(float(values[6]))
                writer.writerow([node["id"], *values])
