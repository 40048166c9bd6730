"""The Playground's chat: settings, the transcript, the input, and one streamed turn at a time.

It holds the open conversation and saves each message to it through the balancer; the
conversation list beside it (`playground_page.py`) opens conversations here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.types import MessageStatus, Role
from app.core.wire import ConversationDetail, JsonObject, JsonValue, Message
from app.ui import attachments
from app.ui.asyncs import spawn
from app.ui.chat_fit import Fitting, FittingChat, Marker
from app.ui.chat_settings import ChatSettings
from app.ui.chat_thinking import Thought
from app.ui.chat_widgets import AttachmentChips, ChatKeys, MessageWidget, figures, tab_after
from app.ui.client import ApiError
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.state import UiState

REPAINT_MS = 50  # streamed text is shown at most 20 times a second
QUIT_WAIT_S = 5.0  # how long quitting waits for the partial answer to be saved
REGENERABLE = {MessageStatus.ERROR, MessageStatus.STOPPED, MessageStatus.INTERRUPTED}
EMPTY_ANSWER = QT_TR_NOOP("The model returned an empty answer.")
ONLY_THOUGHT = QT_TR_NOOP(
    "The model spent its {n} tokens thinking and gave no answer: raise max and ask again."
)


def empty_text(stats: JsonObject) -> str:
    """What an answer with no text says: it all went on thinking, or it was empty."""
    if stats.get("reasoning"):
        return tr(ONLY_THOUGHT).format(n=stats.get("tokens") or 0)
    return tr(EMPTY_ANSWER)


def regenerable(status: str, content: str) -> bool:
    """Whether an answer offers Retry: it failed, stopped, was interrupted, or came back empty."""
    return status in REGENERABLE or not content.strip()


class ChatPanel(QWidget):
    """Title, model, system prompt and parameters; the messages; the input and its buttons.

    `saved` is emitted when the conversation list changed (a conversation was created on the
    first message, or renamed)."""

    saved = Signal()

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.conversation_id: str | None = None
        self.history: list[JsonObject] = []  # what is sent back as context
        self.pending: list[attachments.Attachment] = []
        self.task: asyncio.Task[None] | None = None
        self.current: MessageWidget | None = None
        self.widgets: list[MessageWidget] = []
        self._saved_title = ""
        self._saved_fields: JsonObject = {}  # the open conversation's settings as last saved
        self._quitting = False  # a stop now is the app quitting: the answer is "interrupted"
        self._saving = False  # the answer is being saved: a stop must not cut that short
        layout = QVBoxLayout(self)
        self.settings = ChatSettings()
        s = self.settings
        self.title, self.model, self.system = s.title, s.model, s.system
        self.temperature, self.top_p, self.max_tokens = s.temperature, s.top_p, s.max_tokens
        self.seed, self.stop_words = s.seed, s.stop_words
        self.title.editingFinished.connect(self._rename)
        s.changed.connect(self._save_settings)
        layout.addWidget(s)
        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        # Messages wrap to the transcript's width; they never scroll sideways.
        self.scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroller.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # not a stop: its messages are
        holder = QWidget()
        self.messages = QVBoxLayout(holder)
        self.messages.addStretch(1)
        self.fitting, self.marker = Fitting(), Marker(self.messages, lambda: self.widgets)
        self.scroller.setWidget(holder)
        layout.addWidget(self.scroller, 1)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setProperty("tone", "error")
        layout.addWidget(self.notice)
        self.files = AttachmentChips(removable=True)
        self.files.removed.connect(self._unattach)
        self.files.hide()
        layout.addWidget(self.files)
        layout.addLayout(self._input_row())
        state.hubChanged.connect(self.refresh_models)
        state.nodesChanged.connect(self.refresh_models)  # external servers' models come and go
        self._repaint = QTimer(self)
        self._repaint.setInterval(REPAINT_MS)
        self._repaint.timeout.connect(self._flush)
        self._streamed = ""
        self._thought = Thought()  # the answer's reasoning: shown and saved, never resent

    # -- layout -----------------------------------------------------------------------
    def _input_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.input = QPlainTextEdit()
        self.input.setAccessibleName(tr("message"))
        self.input.setPlaceholderText(tr("Message (Enter sends, Shift+Enter new line, Esc stops)"))
        self.input.setMaximumHeight(90)
        self.input.setTabChangesFocus(True)  # Tab moves on, as everywhere else on the page
        self.keys = ChatKeys(self)
        self.keys.send.connect(self.send)
        self.keys.stop.connect(self.stop)
        self.input.installEventFilter(self.keys)
        self.attach_button = QPushButton(tr("Attach…"))
        self.attach_button.clicked.connect(self._pick_files)
        self.send_button = QPushButton(tr("Send"))
        self.send_button.clicked.connect(self.send_or_stop)
        row.addWidget(self.input, 1)
        row.addWidget(self.attach_button)
        row.addWidget(self.send_button)
        return row

    # -- models and the open conversation ----------------------------------------------
    def refresh_models(self) -> None:
        """The picker lists ready models, with the nodes that will serve them."""
        self.settings.refresh_models(self.state.models, self.state.nodes)

    def _vision(self, model_id: str) -> bool:
        return any(m["id"] == model_id and "Vision" in m["capabilities"] for m in self.state.models)

    def show_conversation(self, conv: ConversationDetail) -> None:
        """Open a saved conversation: its settings and its messages."""
        self.stop()
        self.conversation_id = conv["id"]
        self.settings.load(conv)
        self._saved_title, self._saved_fields = conv["title"], self.settings.fields()
        self._clear_messages()
        self.history = []
        messages = conv["messages"]
        for i, m in enumerate(messages):
            later = messages[i + 1]["role"] if i + 1 < len(messages) else None
            if m["role"] == Role.ASSISTANT and later == Role.ASSISTANT:
                continue  # an answer that was retried: the later one replaced it
            self._show_saved(m)

    def _show_saved(self, m: Message) -> None:
        files = attachments.names(m["attachments"])
        shown = attachments.typed_text(m["content"], m["attachments"]) if files else m["content"]
        if m["role"] == Role.ASSISTANT and not shown.strip():
            shown = f"*{empty_text(m['stats'] or {})}*"  # not "…", which reads as still coming
        widget = self._add(str(m["role"]), shown, files)
        if m["status"] == MessageStatus.ERROR:
            widget.show_error(m["content"])
        else:
            content = attachments.resent(m["content"], m["attachments"])  # files cut to fit
            self.history.append({"role": str(m["role"]), "content": content})
        if m["role"] == Role.ASSISTANT:
            widget.retry.connect(self.retry_last)
            widget.retry_button.setVisible(regenerable(m["status"], m["content"]))
        if m["stats"]:
            widget.show_stats(m["stats"], str(m["status"]))  # with its thinking

    def reset(self) -> None:
        """Start over in a fresh conversation (created when the first message is sent)."""
        self.stop()
        self.conversation_id = None
        self.history = []
        self.settings.load(None)
        self._saved_title, self._saved_fields = "", {}
        self._clear_messages()

    def _rename(self) -> None:
        title = self.title.text().strip()
        if self.conversation_id and title and title != self._saved_title:
            self._saved_title = title
            spawn(
                self.state.client.rename_conversation(self.conversation_id, title),
                on_error=self.say,
                on_done=lambda _r: self.saved.emit(),
            )

    def _save_settings(self) -> None:
        fields = self.settings.fields()
        if self.conversation_id and fields != self._saved_fields:
            self._saved_fields = fields
            spawn(
                self.state.client.update_conversation(self.conversation_id, fields),
                on_error=self.say,
            )

    # -- attachments --------------------------------------------------------------------
    def _pick_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach files")
        for path in paths:
            self.attach(Path(path))

    def attach(self, path: Path) -> bool:
        """Attach a file to the next message; say why not when it cannot be."""
        try:
            item = attachments.load(path, self._vision(str(self.model.currentData())))
        except attachments.AttachmentError as exc:
            self.say(str(exc))
            return False
        self.pending.append(item)
        self.files.set_names([a.name for a in self.pending])
        tab_after(self.widgets, self.stop_words, self.files.tab_stops())
        return True

    def _unattach(self, index: int) -> None:
        del self.pending[index]
        self.files.set_names([a.name for a in self.pending])
        tab_after(self.widgets, self.stop_words, self.files.tab_stops())

    # -- sending ------------------------------------------------------------------------
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
            self.say(tr("No model is ready yet: register one in the Model Hub."))
            return
        if too_long := self.fitting.refuse(str(model), self.state.models, self.settings, text):
            self.say(too_long)  # the text stays in the input, to shorten
            return
        self.settings.flush()
        self.notice.clear()
        files, self.pending = self.pending, []
        self.files.set_names([])
        self.input.clear()
        content: JsonValue = text
        if files:
            content = [{"type": "text", "text": text}, *(f.part() for f in files)]
        self.task = spawn(self._turn(str(model), text, content, files), on_error=self.say)
        self.send_button.setText(tr("Stop"))

    def retry_last(self) -> None:
        """Ask again for the last answer (failed, stopped or interrupted): the new one takes
        its place."""
        if self.task is not None and not self.task.done():
            return
        model = str(self.model.currentData() or "")
        if not model:
            return
        if self.widgets and self.widgets[-1].role == Role.ASSISTANT:
            self._remove(self.widgets[-1])
        if self.history and self.history[-1]["role"] == Role.ASSISTANT:
            self.history.pop()
        if self.history and self.history[-1]["role"] == Role.USER:
            self.notice.clear()
            self.task = spawn(self._answer(model), on_error=self.say)
            self.send_button.setText(tr("Stop"))

    def stop(self) -> None:
        """Stop the answer now (the request is cancelled; the node stops generating)."""
        if self.task is not None and not self.task.done() and not self._saving:
            self.task.cancel()

    async def interrupt(self) -> None:
        """The app quits: stop the answer and save what has arrived, marked interrupted."""
        task = self.task
        if task is None or task.done():
            return
        self._quitting = True
        self.stop()
        await asyncio.wait([task], timeout=QUIT_WAIT_S)

    async def _turn(
        self, model: str, text: str, content: JsonValue, files: list[attachments.Attachment]
    ) -> None:
        client = self.state.client
        if self.conversation_id is None:
            title = (text or files[0].name)[:60]
            params = self.settings.params()
            conv = await client.create_conversation(title, model, self.system.toPlainText(), params)
            self.conversation_id = conv["id"]
            self.title.setText(conv["title"])
            self.saved.emit()
        saved = attachments.saved_text(text, files)
        meta: list[JsonValue] = [{"name": f.name, "kind": f.kind, "size": f.size} for f in files]
        await client.add_message(self.conversation_id, Role.USER, saved, attachments=meta)
        self._saved_title, self._saved_fields = self.title.text(), self.settings.fields()
        self._add(str(Role.USER), text, [f.name for f in files])
        self.history.append({"role": str(Role.USER), "content": content})
        await self._answer(model)

    async def _answer(self, model: str) -> None:
        cid = self.conversation_id  # the answer is saved here even if another chat opens
        widget = self._add(str(Role.ASSISTANT), "")
        widget.retry.connect(self.retry_last)
        self.current, self._streamed, self._thought = widget, "", Thought()
        messages: list[JsonValue] = list[JsonValue](self.history)
        if self.system.toPlainText().strip():
            messages.insert(0, {"role": str(Role.SYSTEM), "content": self.system.toPlainText()})
        body: JsonObject = {"model": model, "messages": messages, **self.settings.params()}
        chat = FittingChat(self.state.client, body, self.fitting, self.marker.show_fit)
        started = time.perf_counter()
        first: float | None = None
        status = MessageStatus.DONE
        self._repaint.start()
        try:
            async for field, piece in chat.deltas():
                first = first or time.perf_counter()
                self._streamed += self._thought.take(field, piece)  # the answer's part
        except asyncio.CancelledError:
            status = MessageStatus.INTERRUPTED if self._quitting else MessageStatus.STOPPED
        except ApiError as exc:
            status = MessageStatus.ERROR
            self._streamed = exc.message
        finally:
            self._repaint.stop()
            self.send_button.setText(tr("Send"))
        stats: JsonObject = {
            "tokens": chat.completion_tokens,
            "node": chat.node,
            **figures(chat.timings, round((first - started) * 1000) if first else None),
            **self._thought.stats(),
        }
        self.current = None
        if widget in self.widgets:  # still on screen (no other chat was opened meanwhile)
            self._finish(widget, status, stats)
        if cid is not None:
            self._saving = True
            try:
                await self.state.client.add_message(
                    cid, Role.ASSISTANT, self._streamed, status=status, stats=stats
                )
            finally:
                self._saving = False

    def _finish(self, widget: MessageWidget, status: MessageStatus, stats: JsonObject) -> None:
        if status == MessageStatus.ERROR:
            widget.show_error(self._streamed)
        else:
            widget.set_text(self._streamed if self._streamed.strip() else f"*{empty_text(stats)}*")
            self.history.append({"role": str(Role.ASSISTANT), "content": self._streamed})
        widget.show_stats(stats, str(status))  # with its thinking
        widget.retry_button.setVisible(regenerable(status, self._streamed))
        # Failed, stopped or empty, the answer's end is where the user looks next.
        QTimer.singleShot(0, lambda: self.scroller.ensureWidgetVisible(widget))

    def _flush(self) -> None:
        if self.current is not None:  # the reasoning streams into the Thinking block
            self.current.thinking.follow(self._thought, done=bool(self._streamed))
        if self.current is not None and self.current.text != self._streamed:
            self.current.set_text(self._streamed)
            bar = self.scroller.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _add(self, role: str, text: str, files: list[str] | None = None) -> MessageWidget:
        for older in self.widgets:  # only the last answer can be asked again
            older.retry_button.hide()
        widget = MessageWidget(role, text, files)
        self.messages.insertWidget(self.messages.count() - 1, widget)
        tab_after(self.widgets, self.stop_words, widget.tab_stops())
        self.widgets.append(widget)
        return widget

    def _remove(self, widget: MessageWidget) -> None:
        self.widgets.remove(widget)
        self.messages.removeWidget(widget)
        widget.deleteLater()

    def _clear_messages(self) -> None:
        for widget in self.widgets:
            self.messages.removeWidget(widget)
            widget.deleteLater()
        self.widgets = []
        self.marker.hide()

    def say(self, text: str) -> None:
        """Show why something failed, under the transcript."""
        self.notice.setText(text)
