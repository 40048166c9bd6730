"""Add an external OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) as a node:
its address, an optional API key and a name; checked here first, the balancer's reason shown
in words when it refuses."""

from __future__ import annotations

from urllib.parse import urlsplit

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QWidget

from app.core.wire import NodeJson
from app.ui.asyncs import spawn
from app.ui.i18n import tr
from app.ui.state import Part, UiState
from app.ui.widgets import FormDialog


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


class ServerDialog(FormDialog):
    """URL, optional API key and name; `added` carries the new node's id."""

    added = Signal(str)

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(tr("Add a server"), parent)
        self.state = state
        intro = QLabel(
            tr(
                "Any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio): its "
                "models are served through llmlb like the nodes' own."
            )
        )
        intro.setWordWrap(True)
        self.body.addWidget(intro)
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
        self.body.addLayout(form)
        self.finish(tr("Add"), 520)

    def submit(self) -> None:
        """Check the fields, then add the server; close on success, say why on failure."""
        url = self.url.text().strip().rstrip("/")
        name = self.name.text().strip()
        problem = check_url(url)
        if problem is None and not name:
            problem = tr("Give the server a name (how the Nodes list shows it).")
        if problem is not None:
            self.show_error(problem)
            return
        self.busy()

        def done(node: NodeJson) -> None:
            self.state.refresh(Part.NODES | Part.MODELS)
            self.added.emit(node["id"])
            self.accept()

        def failed(reason: str) -> None:
            self.show_error(tr("The balancer refused the server: {reason}").format(reason=reason))

        call = self.state.client.add_external_node(name, url, self.api_key.text().strip() or None)
        spawn(call, on_error=failed, on_done=done)
