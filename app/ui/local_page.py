"""The Local tab: registered models with size, memory, path on disk, status, per node."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.i18n import tr
from app.ui.model_card import card_state
from app.ui.state import UiState
from app.ui.widgets import confirm, human_bytes

COLUMNS = ["Model", "Status", "Progress", "Size", "Memory", "Node", "Path", ""]


class LocalPage(QWidget):
    """A table of what is registered, one row per model and node."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        self.empty = QLabel("No model registered yet: pick one in the Model Hub.")
        layout.addWidget(self.empty)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("registered models")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        layout.addWidget(self.table, 1)
        state.hubChanged.connect(self.refresh)

    def rows(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(model, node state or None) pairs in display order."""
        out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for model in self.state.models:
            nodes = model.get("nodes") or []
            out.extend((model, n) for n in nodes) if nodes else out.append((model, None))
        return out

    def refresh(self) -> None:
        """Rebuild the rows (a handful: cheap)."""
        rows = self.rows()
        names = {n["id"]: n["name"] for n in self.state.nodes}
        self.table.setRowCount(len(rows))
        for r, (model, node) in enumerate(rows):
            state = node["state"] if node else card_state(model)
            if node and node["state"] in {"pending", "downloading"}:
                state = "downloading"
            progress = "—"
            if node and node.get("total_bytes"):
                pct = 100.0 * node["downloaded_bytes"] / node["total_bytes"]
                progress = f"{pct:.0f}% of {human_bytes(node['total_bytes'])}"
            status = tr(state)
            if node and node.get("error"):
                status = f"{status}: {node['error']}"
            values = [
                model.get("name") or model["id"],
                status,
                progress,
                human_bytes(model.get("size_bytes")),
                human_bytes(model.get("required_memory_bytes")),
                names.get(node["node_id"], node["node_id"]) if node else "—",
                (node or {}).get("path") or "—",
            ]
            for c, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                item.setToolTip(str(value))
                self.table.setItem(r, c, item)
            button = QPushButton(tr("Delete"))
            button.setAccessibleName(f"{tr('Delete')} {values[0]}")
            button.clicked.connect(lambda _=False, m=model: self.ask_delete(m))
            self.table.setCellWidget(r, len(COLUMNS) - 1, button)
        self.empty.setVisible(not rows)

    def ask_delete(self, model: dict[str, Any]) -> None:
        """Confirm, then unregister."""
        name = model.get("name") or model["id"]
        confirm(
            self,
            "Delete model",
            f"Delete {name}? Every node deletes its files.",
            lambda: self.state.delete(str(model["id"])),
        )
