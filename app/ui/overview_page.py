"""The Overview: how many nodes and models, and the URL to paste into your tools."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.types import HubStatus, Lifecycle
from app.ui.i18n import tr
from app.ui.state import LIVE, UiState


class OverviewPage(QWidget):
    """Counts and the endpoint."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        endpoint = QHBoxLayout()
        self.url = QLabel(state.client.openai_url)
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url.setAccessibleName("OpenAI endpoint URL")
        font = QFont(self.url.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.url.setFont(font)
        copy = QPushButton(tr("Copy"))
        copy.setAccessibleName(tr("Copy endpoint URL"))
        copy.clicked.connect(self.copy_url)
        endpoint.addWidget(QLabel(tr("Endpoint") + ":"))
        endpoint.addWidget(self.url, 1)
        endpoint.addWidget(copy)
        layout.addLayout(endpoint)
        grid = QGridLayout()
        self.numbers: dict[str, QLabel] = {}
        for i, key in enumerate(
            ("Nodes online", "Models registered", "Models ready", "Downloading")
        ):
            value = QLabel("—")
            big = QFont(value.font())
            big.setPointSizeF(big.pointSizeF() * 2.2)
            big.setBold(True)
            value.setFont(big)
            value.setAccessibleName(key)
            grid.addWidget(value, 0, i)
            grid.addWidget(QLabel(key), 1, i)
            self.numbers[key] = value
        layout.addLayout(grid)
        hint = QLabel(
            "Point any OpenAI client at the endpoint above, for example:\n"
            f'OpenAI(base_url="{state.client.openai_url}", api_key="unused")'
        )
        hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(hint)
        layout.addStretch(1)
        state.hubChanged.connect(self.refresh)
        state.nodesChanged.connect(self.refresh)

    def refresh(self) -> None:
        """Recount."""
        models = self.state.models
        self.numbers["Nodes online"].setText(
            str(sum(1 for n in self.state.nodes if n["status"] in LIVE))
        )
        self.numbers["Models registered"].setText(str(len(models)))
        self.numbers["Models ready"].setText(
            str(sum(1 for m in models if m.get("lifecycle_status") == Lifecycle.READY))
        )
        self.numbers["Downloading"].setText(
            str(sum(1 for m in models if m["status"] == HubStatus.DOWNLOADING))
        )

    def copy_url(self) -> None:
        """Put the endpoint on the clipboard."""
        QGuiApplication.clipboard().setText(self.state.client.openai_url)
