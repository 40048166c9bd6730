"""Add an external OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) as a node:
its address, an optional API key and a name; checked here first, the balancer's reason shown
in words when it refuses."""

from __future__ import annotations

from urllib.parse import urlsplit

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import NodeJson
from app.ui.asyncs import spawn
from app.ui.i18n import tr
from app.ui.state import Part, UiState


def check_url(text: str) -> str | None:
    """Why `text` is not a server address the balancer could call, or None when it is."""
    if not text:
        return tr("Enter the server's address, e.g. http://192.168.1.20:8080.")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return tr("'{url}' is not a valid address.").format(url=text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return tr("The address must start with http:// or https:// and name a host.")
    if parts.query or parts.fragment:
        return tr("The address must not have a query (?…) or a fragment (#…).")
    return None


class ServerDialog(QDialog):
    """URL, optional API key and name; `added` carries the new node's id."""

    added = Signal(str)

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle(tr("Add a server"))
        layout = QVBoxLayout(self)
        intro = QLabel(
            tr(
                "Any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio): its "
                "models are served through llmlb like the nodes' own."
            )
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://192.168.1.20:8080")
        self.url.setAccessibleName(tr("Server address"))
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(tr("only when the server asks for one"))
        self.api_key.setAccessibleName(tr("API key"))
        self.name = QLineEdit()
        self.name.setPlaceholderText(tr("e.g. vllm-box"))
        self.name.setAccessibleName(tr("Name"))
        form.addRow(tr("Address"), self.url)
        form.addRow(tr("API key (optional)"), self.api_key)
        form.addRow(tr("Name"), self.name)
        layout.addLayout(form)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setProperty("tone", "error")
        self.error.setAccessibleName(tr("Error"))
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("Add"))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(520, self.sizeHint().height())

    def submit(self) -> None:
        """Check the fields, then add the server; close on success, say why on failure."""
        url = self.url.text().strip().rstrip("/")
        name = self.name.text().strip()
        problem = check_url(url)
        if problem is None and not name:
            problem = tr("Give the server a name (how the Nodes list shows it).")
        if problem is not None:
            self._show(problem)
            return
        self.buttons.setEnabled(False)
        self.error.hide()

        def done(node: NodeJson) -> None:
            self.state.refresh(Part.NODES | Part.MODELS)
            self.added.emit(node["id"])
            self.accept()

        def failed(reason: str) -> None:
            self.buttons.setEnabled(True)
            self._show(tr("The balancer refused the server: {reason}").format(reason=reason))

        call = self.state.client.add_external_node(name, url, self.api_key.text().strip() or None)
        spawn(call, on_error=failed, on_done=done)

    def _show(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
