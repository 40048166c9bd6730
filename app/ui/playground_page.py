"""The Playground: chat with any ready model through the same /v1 endpoint users' tools use."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.ui import attachments
from app.ui.asyncs import spawn
from app.ui.chat_widgets import ChatKeys, MessageWidget
from app.ui.client import ApiError, ChatStream
from app.ui.state import UiState
from app.ui.widgets import confirm

REPAINT_MS = 50  # streamed text is shown at most 20 times a second


class PlaygroundPage(QWidget):
    """Conversations on the left; the chat, its settings and the input on the right."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.conversation: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []  # what is sent back as context
        self.pending: list[attachments.Attachment] = []
        self.task: asyncio.Task[Any] | None = None
        self.current: MessageWidget | None = None
        self.widgets: list[MessageWidget] = []
        split = QSplitter()
        split.addWidget(self._sidebar())
        split.addWidget(self._chat())
        split.setStretchFactor(1, 1)
        QVBoxLayout(self).addWidget(split)
        state.hubChanged.connect(self.refresh_models)
        self._repaint = QTimer(self)
        self._repaint.setInterval(REPAINT_MS)
        self._repaint.timeout.connect(self._flush)
        self._streamed = ""

    # -- layout -----------------------------------------------------------------
    def _sidebar(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(self.new_chat)
        self.chats = QListWidget()
        self.chats.setAccessibleName("conversations")
        self.chats.currentItemChanged.connect(lambda item, _old: self._open(item))
        self.delete_button = QPushButton("Delete chat")
        self.delete_button.clicked.connect(self.delete_chat)
        for w in (self.new_button, self.chats, self.delete_button):
            layout.addWidget(w)
        return box

    def _chat(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        top = QFormLayout()
        self.title = QLineEdit()
        self.title.setAccessibleName("conversation title")
        self.title.editingFinished.connect(self._rename)
        self.model = QComboBox()
        self.model.setAccessibleName("model")
        self.system = QPlainTextEdit()
        self.system.setAccessibleName("system prompt")
        self.system.setPlaceholderText("System prompt (optional)")
        self.system.setMaximumHeight(54)
        params = QHBoxLayout()
        self.temperature = self._spin(QDoubleSpinBox(), 0, 2, 0.7, "temperature")
        self.top_p = self._spin(QDoubleSpinBox(), 0, 1, 1.0, "top p")
        self.max_tokens = self._spin(QSpinBox(), 1, 32768, 512, "max tokens")
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("seed")
        self.seed.setAccessibleName("seed")
        self.stop_words = QLineEdit()
        self.stop_words.setPlaceholderText("stop (comma-separated)")
        self.stop_words.setAccessibleName("stop sequences")
        for label, w in (
            ("temp", self.temperature),
            ("top p", self.top_p),
            ("max", self.max_tokens),
            ("", self.seed),
            ("", self.stop_words),
        ):
            if label:
                params.addWidget(QLabel(label))
            params.addWidget(w)
        top.addRow("Title", self.title)
        top.addRow("Model", self.model)
        top.addRow("System", self.system)
        top.addRow("Parameters", params)
        layout.addLayout(top)
        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        holder = QWidget()
        self.messages = QVBoxLayout(holder)
        self.messages.addStretch(1)
        self.scroller.setWidget(holder)
        layout.addWidget(self.scroller, 1)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #b3261e;")
        layout.addWidget(self.notice)
        self.files = QLabel()
        layout.addWidget(self.files)
        row = QHBoxLayout()
        self.input = QPlainTextEdit()
        self.input.setAccessibleName("message")
        self.input.setPlaceholderText("Message (Enter sends, Shift+Enter new line, Esc stops)")
        self.input.setMaximumHeight(90)
        self.keys = ChatKeys(self)
        self.keys.send.connect(self.send)
        self.keys.stop.connect(self.stop)
        self.input.installEventFilter(self.keys)
        self.attach_button = QPushButton("Attach…")
        self.attach_button.clicked.connect(self._pick_files)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send_or_stop)
        row.addWidget(self.input, 1)
        row.addWidget(self.attach_button)
        row.addWidget(self.send_button)
        layout.addLayout(row)
        return box

    @staticmethod
    def _spin(spin: Any, lo: float, hi: float, value: float, name: str) -> Any:
        spin.setRange(lo, hi)
        if isinstance(spin, QDoubleSpinBox):
            spin.setSingleStep(0.05)
        spin.setValue(value)
        spin.setAccessibleName(name)
        return spin

    # -- models and conversations -----------------------------------------------
    def refresh_models(self) -> None:
        """The picker lists ready models, with the nodes that will serve them."""
        chosen = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        for m in self.state.models:
            if m.get("lifecycle_status") == "ready":
                nodes = len(m.get("ready_nodes") or [])
                self.model.addItem(f"{m.get('name') or m['id']}  ({nodes} node(s))", m["id"])
        index = self.model.findData(chosen)
        self.model.setCurrentIndex(max(0, index))
        self.model.blockSignals(False)

    def _vision(self, model_id: str) -> bool:
        return any(
            m["id"] == model_id and "Vision" in (m.get("capabilities") or [])
            for m in self.state.models
        )

    def load_chats(self) -> asyncio.Task[Any]:
        """Fill the conversation list from the balancer."""

        def fill(chats: Any) -> None:
            current = self.conversation["id"] if self.conversation else None
            self.chats.blockSignals(True)
            self.chats.clear()
            for c in chats:
                item = QListWidgetItem(c["title"])
                item.setData(Qt.ItemDataRole.UserRole, c["id"])
                self.chats.addItem(item)
                if c["id"] == current:
                    self.chats.setCurrentItem(item)
            self.chats.blockSignals(False)

        return spawn(
            self.state.client.request("GET", "/v0/conversations"), on_error=self._say, on_done=fill
        )

    def new_chat(self) -> None:
        """Start over in a fresh conversation (created when the first message is sent)."""
        self.stop()
        self.conversation = None
        self.history = []
        self.title.clear()
        self._clear_messages()
        self.chats.clearSelection()

    def _open(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        cid = item.data(Qt.ItemDataRole.UserRole)

        def show(conv: Any) -> None:
            self.conversation = conv
            self.title.setText(conv["title"])
            self.system.setPlainText(conv.get("system_prompt") or "")
            index = self.model.findData(conv.get("model"))
            if index >= 0:
                self.model.setCurrentIndex(index)
            self._clear_messages()
            self.history = []
            for m in conv["messages"]:
                widget = self._add(m["role"], m["content"])
                if m["status"] == "error":
                    widget.show_error(m["content"])
                else:
                    self.history.append({"role": m["role"], "content": m["content"]})
                if m.get("stats"):
                    widget.stats.setText(self._stats_text(m["stats"], m["status"]))

        spawn(
            self.state.client.request("GET", f"/v0/conversations/{cid}"),
            on_error=self._say,
            on_done=show,
        )

    def delete_chat(self) -> None:
        """Delete the selected conversation, after confirmation."""
        item = self.chats.currentItem()
        if item is None:
            return
        cid = item.data(Qt.ItemDataRole.UserRole)

        def gone(_r: Any) -> None:
            self.new_chat()
            self.load_chats()

        confirm(
            self,
            "Delete chat",
            f"Delete “{item.text()}” and all its messages?",
            lambda: spawn(
                self.state.client.request("DELETE", f"/v0/conversations/{cid}"),
                on_error=self._say,
                on_done=gone,
            ),
        )

    def _rename(self) -> None:
        if self.conversation and self.title.text().strip():
            spawn(
                self.state.client.request(
                    "PUT",
                    f"/v0/conversations/{self.conversation['id']}",
                    {"title": self.title.text().strip()},
                ),
                on_error=self._say,
                on_done=lambda _r: self._reload(),
            )

    def _reload(self) -> None:
        self.load_chats()

    # -- attachments ------------------------------------------------------------
    def _pick_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach files")
        for path in paths:
            self.attach(Path(path))

    def attach(self, path: Path) -> bool:
        """Attach a file to the next message; say why not when it cannot be."""
        try:
            item = attachments.load(path, self._vision(str(self.model.currentData())))
        except attachments.AttachmentError as exc:
            self._say(str(exc))
            return False
        self.pending.append(item)
        self.files.setText("Attached: " + ", ".join(a.name for a in self.pending))
        return True

    # -- sending ----------------------------------------------------------------
    def send_or_stop(self) -> None:
        """The button: Send, or Stop while an answer streams."""
        if self.task is not None and not self.task.done():
            self.stop()
        else:
            self.send()

    def send(self) -> None:
        """Send the input (and attachments) and stream the answer."""
        text = self.input.toPlainText().strip()
        model = self.model.currentData()
        if self.task is not None and not self.task.done():
            return
        if not text and not self.pending:
            return
        if not model:
            self._say("No model is ready yet: register one in the Model Hub.")
            return
        self.notice.clear()
        files, self.pending = self.pending, []
        self.files.clear()
        self.input.clear()
        content: Any = text
        if files:
            content = [{"type": "text", "text": text}] + [f.part() for f in files]
        self.task = spawn(self._turn(str(model), text, content, files), on_error=self._say)
        self.send_button.setText("Stop")

    def retry_last(self) -> None:
        """Ask again for the answer that failed."""
        if self.task is not None and not self.task.done():
            return
        model = str(self.model.currentData() or "")
        if model and self.history and self.history[-1]["role"] == "user":
            self.task = spawn(self._answer(model), on_error=self._say)
            self.send_button.setText("Stop")

    def stop(self) -> None:
        """Stop the answer now (the request is cancelled; the node stops generating)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _turn(
        self, model: str, text: str, content: Any, files: list[attachments.Attachment]
    ) -> None:
        client = self.state.client
        if self.conversation is None:
            self.conversation = await client.request(
                "POST",
                "/v0/conversations",
                {
                    "title": (text or files[0].name)[:60],
                    "model": model,
                    "system_prompt": self.system.toPlainText(),
                    "params": self._params(),
                },
            )
            self.title.setText(self.conversation["title"])
            self.load_chats()
        saved = text + "".join(f"\n\n[{f.name}]\n{f.text}" for f in files if f.text)
        meta = [{"name": f.name, "kind": f.kind, "size": f.size} for f in files]
        await client.request(
            "POST",
            f"/v0/conversations/{self.conversation['id']}/messages",
            {"role": "user", "content": saved, "attachments": meta},
        )
        self._add("user", text + "".join(f"\n\n📎 {f.name}" for f in files))
        self.history.append({"role": "user", "content": content})
        await self._answer(model)

    async def _answer(self, model: str) -> None:
        widget = self._add("assistant", "")
        widget.retry.connect(self.retry_last)
        self.current, self._streamed = widget, ""
        messages = list(self.history)
        if self.system.toPlainText().strip():
            messages.insert(0, {"role": "system", "content": self.system.toPlainText()})
        chat = ChatStream(
            self.state.client, {"model": model, "messages": messages, **self._params()}
        )
        started = time.perf_counter()
        first: float | None = None
        status = "done"
        self._repaint.start()
        try:
            async for piece in chat.deltas():
                first = first or time.perf_counter()
                self._streamed += piece
        except asyncio.CancelledError:
            status = "stopped"
        except ApiError as exc:
            status = "error"
            self._streamed = exc.message
        finally:
            self._repaint.stop()
            self.send_button.setText("Send")
        ended = time.perf_counter()
        tokens = (chat.usage or {}).get("completion_tokens")
        stats = {
            "tokens": tokens,
            "node": chat.node,
            "ttft_ms": round((first - started) * 1000) if first else None,
            "tokens_per_s": round(tokens / (ended - first), 1)
            if tokens and first and ended > first
            else None,
        }
        if status == "error":
            widget.show_error(self._streamed)
        else:
            widget.set_text(self._streamed)
            self.history.append({"role": "assistant", "content": self._streamed})
        widget.stats.setText(self._stats_text(stats, status))
        self.current = None
        if self.conversation is not None:
            await self.state.client.request(
                "POST",
                f"/v0/conversations/{self.conversation['id']}/messages",
                {"role": "assistant", "content": self._streamed, "status": status, "stats": stats},
            )

    def _flush(self) -> None:
        if self.current is not None and self.current.text != self._streamed:
            self.current.set_text(self._streamed)
            bar = self.scroller.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature.value(),
            "top_p": self.top_p.value(),
            "max_tokens": self.max_tokens.value(),
        }
        if self.seed.text().strip().lstrip("-").isdigit():
            params["seed"] = int(self.seed.text().strip())
        stops = [s for s in self.stop_words.text().split(",") if s.strip()]
        if stops:
            params["stop"] = stops[:4]
        return params

    @staticmethod
    def _stats_text(stats: dict[str, Any], status: str) -> str:
        parts = [] if status == "done" else [status]
        if stats.get("tokens") is not None:
            parts.append(f"{stats['tokens']} tokens")
        if stats.get("ttft_ms") is not None:
            parts.append(f"first token {stats['ttft_ms']} ms")
        if stats.get("tokens_per_s"):
            parts.append(f"{stats['tokens_per_s']} tok/s")
        if stats.get("node"):
            parts.append(f"node {stats['node']}")
        return " · ".join(parts)

    def _add(self, role: str, text: str) -> MessageWidget:
        widget = MessageWidget(role, text)
        self.messages.insertWidget(self.messages.count() - 1, widget)
        self.widgets.append(widget)
        return widget

    def _clear_messages(self) -> None:
        for widget in self.widgets:
            self.messages.removeWidget(widget)
            widget.deleteLater()
        self.widgets = []

    def _say(self, text: str) -> None:
        self.notice.setText(text)
