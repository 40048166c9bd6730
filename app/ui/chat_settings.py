"""The Playground chat's settings: title, model, system prompt and sampling parameters.

They belong to the open conversation: `load` shows a saved conversation's settings, `fields`
gives what to save, and `changed` says the user edited one (after a short pause, so a spin
box being scrolled is saved once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from app.core.types import Lifecycle, ModelState, NodeStatus
from app.core.wire import ConversationDetail, JsonObject, JsonValue, NodeJson, RegisteredModel
from app.ui.i18n import tr

DEFAULTS: JsonObject = {"temperature": 0.7, "top_p": 1.0, "max_tokens": 512}
SAVE_AFTER_MS = 400  # edits are saved once they pause this long


class ChatSettings(QWidget):
    """The form above the transcript; `changed` fires when the user edits a setting."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.title = QLineEdit()
        self.title.setAccessibleName(tr("conversation title"))
        self.model = QComboBox()
        self.model.setAccessibleName(tr("model"))
        self.system = QPlainTextEdit()
        self.system.setAccessibleName(tr("system prompt"))
        self.system.setPlaceholderText(tr("System prompt (optional)"))
        self.system.setMaximumHeight(54)
        self.system.setTabChangesFocus(True)  # Tab leaves the box: no tabs sent to the model
        self.temperature = _spin(QDoubleSpinBox(), 0, 2, tr("temperature"))
        self.top_p = _spin(QDoubleSpinBox(), 0, 1, tr("top p"))
        self.max_tokens = _spin(QSpinBox(), 1, 32768, tr("max tokens"))
        self.seed = QLineEdit()
        self.seed.setPlaceholderText(tr("seed"))
        self.seed.setAccessibleName(tr("seed"))
        self.seed.setFixedWidth(self.seed.fontMetrics().horizontalAdvance("00000000") + 16)
        self.stop_words = QLineEdit()
        self.stop_words.setPlaceholderText(tr("stop words, comma-separated"))
        self.stop_words.setAccessibleName(tr("stop sequences"))
        # Wide enough for its whole placeholder, which says how to fill it in.
        hint = self.stop_words.fontMetrics().horizontalAdvance(self.stop_words.placeholderText())
        self.stop_words.setMinimumWidth(hint + 24)
        params = QHBoxLayout()
        for label, w in (
            (tr("temp"), self.temperature),
            (tr("top p"), self.top_p),
            (tr("max"), self.max_tokens),
        ):
            params.addWidget(QLabel(label))
            params.addWidget(w)
        params.addStretch(1)
        # Seed and stop words get a row of their own, so the form fits an 800 px window.
        ending = QHBoxLayout()
        ending.addWidget(self.seed)
        ending.addWidget(self.stop_words, 1)
        form.addRow(tr("Title"), self.title)
        form.addRow(tr("Model"), self.model)
        form.addRow(tr("System"), self.system)
        form.addRow(tr("Parameters"), params)
        form.addRow(tr("Seed, stop"), ending)
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(SAVE_AFTER_MS)
        self._pause.timeout.connect(self.changed.emit)
        self._loading = False
        self.load(None)
        self.model.currentIndexChanged.connect(self._edited)
        self.system.textChanged.connect(self._edited)
        for spin in (self.temperature, self.top_p, self.max_tokens):
            spin.valueChanged.connect(self._edited)
        self.seed.textChanged.connect(self._edited)
        self.stop_words.textChanged.connect(self._edited)

    def _edited(self) -> None:
        if not self._loading:
            self._pause.start()

    def flush(self) -> None:
        """Report an edit still waiting for its pause now (a message is about to be sent)."""
        if self._pause.isActive():
            self._pause.stop()
            self.changed.emit()

    def load(self, conv: ConversationDetail | None) -> None:
        """Show a saved conversation's settings, or the defaults for a new one."""
        self._loading = True
        try:
            self._pause.stop()
            params = {**DEFAULTS, **(conv["params"] if conv else {})}
            self.title.setText(conv["title"] if conv else "")
            self.system.setPlainText(conv["system_prompt"] if conv else "")
            index = self.model.findData(conv["model"]) if conv else -1
            if index >= 0:
                self.model.setCurrentIndex(index)
            self.temperature.setValue(_number(params["temperature"], 0.7))
            self.top_p.setValue(_number(params["top_p"], 1.0))
            self.max_tokens.setValue(int(_number(params["max_tokens"], 512)))
            seed = params.get("seed")
            self.seed.setText(str(seed) if isinstance(seed, int) else "")
            stops = params.get("stop")
            words = [str(s) for s in stops] if isinstance(stops, list) else []
            self.stop_words.setText(", ".join(words))
        finally:
            self._loading = False

    def params(self) -> JsonObject:
        """The sampling parameters as the chat request takes them."""
        params: JsonObject = {
            "temperature": round(self.temperature.value(), 2),
            "top_p": round(self.top_p.value(), 2),
            "max_tokens": self.max_tokens.value(),
        }
        if self.seed.text().strip().lstrip("-").isdigit():
            params["seed"] = int(self.seed.text().strip())
        stops: list[JsonValue] = [s.strip() for s in self.stop_words.text().split(",")]
        stops = [s for s in stops if s]
        if stops:
            params["stop"] = stops[:4]
        return params

    def fields(self) -> JsonObject:
        """What is saved with the conversation (besides its title)."""
        return {
            "model": str(self.model.currentData() or ""),
            "system_prompt": self.system.toPlainText(),
            "params": self.params(),
        }

    def refresh_models(
        self, models: list[RegisteredModel], servers: Sequence[NodeJson] = ()
    ) -> None:
        """The picker lists ready models, with how many nodes will serve each, then the
        models of live external servers (they need no registration: the balancer serves
        them by the name the server gives them)."""
        items = [
            (f"{m['name'] or m['id']}  ({nodes(len(m['ready_nodes']))})", m["id"])
            for m in models
            if m.get("lifecycle_status") == Lifecycle.READY
        ]
        for name, hosts in external_models(servers, {m["id"] for m in models}).items():
            items.append((f"{name}  ({', '.join(hosts)})", name))
        shown = [
            (self.model.itemText(i), self.model.itemData(i)) for i in range(self.model.count())
        ]
        if items == shown:
            return  # the nodes' poll changed nothing here: an open list stays open
        chosen = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        for text, data in items:
            self.model.addItem(text, data)
        index = self.model.findData(chosen)
        self.model.setCurrentIndex(max(0, index))
        self.model.blockSignals(False)


def external_models(servers: Sequence[NodeJson], registered: set[str]) -> dict[str, list[str]]:
    """Each ready model of a live external server by name, with the servers holding it
    (a registered model of the same name is listed as registered already)."""
    out: dict[str, list[str]] = {}
    for node in servers:
        if node["kind"] != "external" or node["status"] != NodeStatus.ONLINE:
            continue
        for m in node["models"]:
            if m["state"] == ModelState.READY and m["name"] not in registered:
                out.setdefault(m["name"], []).append(node["name"] or node["id"])
    return out


def nodes(count: int) -> str:
    """'1 node', '2 nodes'."""
    return tr("1 node") if count == 1 else tr("{n} nodes").format(n=count)


def _number(value: JsonValue, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


def _spin(spin: Any, lo: float, hi: float, name: str) -> Any:
    spin.setRange(lo, hi)
    if isinstance(spin, QDoubleSpinBox):
        spin.setSingleStep(0.05)
    spin.setAccessibleName(name)
    return spin
