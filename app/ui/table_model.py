"""What every table of the window shares: headers in the language in force, and its size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.ui.i18n import tr

Index = QModelIndex | QPersistentModelIndex


class TableModel(QAbstractTableModel):
    """A flat table: a subclass names its `headers` (QT_TR_NOOP literals) and its row count."""

    headers: Sequence[str] = ()

    def row_count(self) -> int:
        """How many rows the table shows now."""
        raise NotImplementedError

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.row_count()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return tr(self.headers[section])
        return None
