"""The Local tab: registered models with size, memory, path on disk, status, per node."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.types import ModelState
from app.core.wire import NodeModelJson, RegisteredModel
from app.ui.download_text import node_progress, progress_text, retry_text
from app.ui.gpu_layers_dialog import GpuLayersDialog, describe
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.model_card import card_state, retry_model
from app.ui.state import UiState
from app.ui.widgets import CardState, confirm, human_bytes, state_text

COLUMNS = [
    QT_TR_NOOP("Model"),
    QT_TR_NOOP("Status"),
    QT_TR_NOOP("Progress"),
    QT_TR_NOOP("Size"),
    QT_TR_NOOP("Memory"),
    QT_TR_NOOP("Node"),
    QT_TR_NOOP("Path"),
    "",
]


class LocalPage(QWidget):
    """A table of what is registered, one row per model and node."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        self.empty = QLabel(tr("No model registered yet: pick one in the Model Hub."))
        layout.addWidget(self.empty)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([tr(c) if c else "" for c in COLUMNS])
        self.table.setAccessibleName(tr("registered models"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        # Right-click (or the menu key) on a row: its model's settings.
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._menu)
        layout.addWidget(self.table, 1)
        self.dialog: GpuLayersDialog | None = None  # the one open, if any
        # While a download waits to retry, its row's "retrying in N s" counts down.
        self.countdown = QTimer(self)
        self.countdown.setInterval(1000)
        self.countdown.timeout.connect(self._show_statuses)
        state.hubChanged.connect(self.refresh)

    def rows(self) -> list[tuple[RegisteredModel, NodeModelJson | None]]:
        """(model, node state or None) pairs in display order."""
        out: list[tuple[RegisteredModel, NodeModelJson | None]] = []
        for model in self.state.models:
            nodes = model["nodes"]
            out.extend((model, n) for n in nodes) if nodes else out.append((model, None))
        return out

    def refresh(self) -> None:
        """Rebuild the rows (a handful: cheap)."""
        rows = self.rows()
        names = {n["id"]: n["name"] for n in self.state.nodes}
        self.table.setRowCount(len(rows))
        for r, (model, node) in enumerate(rows):
            state = str(node["state"]) if node else card_state(model)
            if node and node["state"] in (ModelState.PENDING, ModelState.DOWNLOADING):
                state = CardState.DOWNLOADING
            progress = "—"
            if node and node["total_bytes"]:
                progress = progress_text(node_progress(node))
            values = [
                model.get("name") or model["id"],
                self._status(state, node),
                progress,
                human_bytes(model.get("size_bytes")),
                human_bytes(model.get("required_memory_bytes")),
                names.get(node["node_id"], node["node_id"]) if node else "—",
                (node["path"] if node else None) or "—",
            ]
            gpu = describe(model.get("gpu_layers"))
            for c, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                item.setToolTip(str(value))
                if c == 0:  # where the model's own settings show
                    item.setToolTip(
                        tr("{name}\nGPU layers: {layers} (right-click to change)").format(
                            name=value, layers=gpu
                        )
                    )
                self.table.setItem(r, c, item)
            button = QPushButton(tr("Delete"))
            button.setAccessibleName(tr("Delete {name}").format(name=values[0]))
            button.clicked.connect(lambda _=False, m=model: self.ask_delete(m))
            if node and node["state"] == ModelState.ERROR:
                # A model in error on this node: Retry beside Delete.
                retry = QPushButton(tr("Retry"))
                retry.setAccessibleName(tr("Retry {name}").format(name=values[0]))
                retry.clicked.connect(lambda _=False, m=model: retry_model(self.state, m["id"]))
                cell = QWidget()
                buttons = QHBoxLayout(cell)
                buttons.setContentsMargins(0, 0, 0, 0)
                buttons.addWidget(retry)
                buttons.addWidget(button)
                self.table.setCellWidget(r, len(COLUMNS) - 1, cell)
            else:
                self.table.setCellWidget(r, len(COLUMNS) - 1, button)
        self.empty.setVisible(not rows)
        waiting = any(n and n.get("retry_at") is not None for _, n in rows)
        if waiting and not self.countdown.isActive():
            self.countdown.start()
        elif not waiting:
            self.countdown.stop()

    @staticmethod
    def _status(state: str, node: NodeModelJson | None) -> str:
        """The row's state in words; with an error, or why and when a download tries again."""
        status = state_text(state)
        if node and node["error"]:
            reason = node["error"]
            if node["state"] in (ModelState.PENDING, ModelState.DOWNLOADING):
                reason = retry_text(reason, node.get("retry_at"))
            status = f"{status}: {reason}"
        return status

    def _show_statuses(self) -> None:
        """Count the retry waits down in place (no rebuild: focus and selection stay)."""
        for r, (_, node) in enumerate(self.rows()):
            item = self.table.item(r, 1)
            if node and node.get("retry_at") is not None and item is not None:
                text = self._status(CardState.DOWNLOADING, node)
                item.setText(text)
                item.setToolTip(text)

    def _menu(self, at: QPoint) -> None:
        row = self.table.rowAt(at.y())
        rows = self.rows()
        if not 0 <= row < len(rows):
            return
        model = rows[row][0]
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one per right-click
        menu.addAction(tr("GPU layers and context…"), lambda: self.edit_gpu_layers(model))
        menu.popup(self.table.viewport().mapToGlobal(at))

    def edit_gpu_layers(self, model: RegisteredModel) -> GpuLayersDialog:
        """Open the dialog that sets how many layers `model` offloads to the GPU."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = GpuLayersDialog(self.state, model, self)
        self.dialog.open()
        return self.dialog

    def ask_delete(self, model: RegisteredModel) -> None:
        """Confirm, then unregister."""
        name = model.get("name") or model["id"]
        confirm(
            self,
            tr("Delete model"),
            tr("Delete {name}? Every node deletes its files.").format(name=name),
            lambda: self.state.delete(model["id"]),
        )
