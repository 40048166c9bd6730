"""The Overview: how many nodes and models, and the URL to paste into your tools."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.types import HubStatus, Lifecycle
from app.ui.endpoint import client_snippet, keys_required, public_url
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.state import LIVE, UiState


class OverviewPage(QWidget):
    """Counts, the endpoint, how to call it, and a way to a first model."""

    wantsHub = Signal()  # "Get a model": the window shows the Model Hub
    wantsKeys = Signal()  # "API keys…": the window shows Settings' API keys

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        endpoint = QHBoxLayout()
        self.url = QLabel(self.endpoint_url())
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url.setAccessibleName(tr("OpenAI endpoint URL"))
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
        captions = (
            QT_TR_NOOP("Nodes online"),
            QT_TR_NOOP("Models registered"),
            QT_TR_NOOP("Models ready"),
            QT_TR_NOOP("Downloading"),
        )
        for i, key in enumerate(captions):
            value = QLabel("—")
            big = QFont(value.font())
            big.setPointSizeF(big.pointSizeF() * 2.2)
            big.setBold(True)
            value.setFont(big)
            value.setAccessibleName(tr(key))
            caption = QLabel(tr(key))
            caption.setWordWrap(True)  # four captions side by side at 800 px, in any language
            grid.addWidget(value, 0, i)
            grid.addWidget(caption, 1, i)
            self.numbers[key] = value
        layout.addLayout(grid)
        layout.addWidget(self._first_model())
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint.setAccessibleName(tr("how to call the endpoint"))
        layout.addWidget(self.hint)
        self.keys_button = QPushButton(tr("API keys…"))
        self.keys_button.clicked.connect(self.wantsKeys.emit)
        layout.addWidget(self.keys_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        state.hubChanged.connect(self.refresh)
        state.nodesChanged.connect(self.refresh)
        self.refresh()

    def _first_model(self) -> QFrame:
        """Shown while no model is registered: the way to a first one."""
        self.empty = QFrame()
        self.empty.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self.empty)
        text = QLabel(
            tr("No model yet. Pick one in the Model Hub: it downloads and is ready to use here.")
        )
        text.setWordWrap(True)
        self.get_model = QPushButton(tr("Get a model…"))
        self.get_model.clicked.connect(self.wantsHub.emit)
        row.addWidget(text, 1)
        row.addWidget(self.get_model)
        self.empty.hide()
        return self.empty

    def endpoint_url(self) -> str:
        """The /v1 URL to paste into tools (the LAN address while serving the LAN)."""
        return public_url(self.state) + "/v1"

    def refresh(self) -> None:
        """Recount, and say how to call the endpoint under the current key policy."""
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
        # Only once the hub has loaded: "no model" before the first answer would flash.
        self.empty.setVisible(bool(self.state.hub) and not models)
        self.url.setText(self.endpoint_url())
        self.hint.setText(client_snippet(self.state))
        self.keys_button.setVisible(keys_required(self.state))

    def copy_url(self) -> None:
        """Put the endpoint on the clipboard."""
        QGuiApplication.clipboard().setText(self.endpoint_url())
