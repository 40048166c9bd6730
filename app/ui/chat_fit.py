"""The Playground's requests sized to the model's context: the stream that fits and, when the
node still counts too many tokens, trims further and asks again; the marker that shows what
was left out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout

from app.core.wire import JsonObject, JsonValue, RegisteredModel
from app.ui.chat_settings import ChatSettings
from app.ui.chat_stream import ChatStream
from app.ui.chat_widgets import MessageWidget
from app.ui.chat_window import (
    BYTES_PER_TOKEN,
    Fitted,
    TooLong,
    Window,
    corrected,
    exceeded,
    fit,
    window,
)
from app.ui.client import ApiClient, ApiError
from app.ui.i18n import QT_TR_NOOP, tr

RESENDS = 2  # after a context_length_exceeded, trimmed further and sent again at most twice
EXCEEDED = "context_length_exceeded"
EARLIER = QT_TR_NOOP("Earlier messages are not sent: they do not fit the model's {context} context")
CUT = QT_TR_NOOP(
    "{name} is cut to fit the model's {context} context: its first {sent} of {total} "
    "characters are sent"
)
TOO_LONG = QT_TR_NOOP(
    "This message is too long for the model's {context} context: shorten it and send again."
)


def size(tokens: int) -> str:
    """'32k' for 32768 tokens; small contexts as they are."""
    return f"{round(tokens / 1024)}k" if tokens >= 1024 else str(tokens)


class Fitting:
    """How this Playground sizes its requests: the estimate's ratio (UTF-8 bytes per token),
    and per model the window a node's 400 taught it."""

    def __init__(self, bytes_per_token: float = BYTES_PER_TOKEN) -> None:
        self.bytes_per_token = bytes_per_token
        self.learned: dict[str, Window] = {}
        self.resent = 0  # requests sent again, trimmed further, after a context_length_exceeded
        self.last: Fitted | None = None  # what the last request carried

    def window(self, model: str, context: int | None, max_tokens: int) -> Window:
        """The window for `model` (its advertised context, None if unknown), with what a node
        counted for it before."""
        win = window(context, max_tokens, self.bytes_per_token)
        known = self.learned.get(model)
        if known is None:
            return win
        held = min(win.context, known.context) if context else known.context
        return window(held, max_tokens, min(win.bytes_per_token, known.bytes_per_token))

    def refuse(
        self, model: str, models: Sequence[RegisteredModel], settings: ChatSettings, text: str
    ) -> str | None:
        """Why `text` cannot be sent to `model` even alone (too long), or None."""
        found = next((m for m in models if m["id"] == model), None)
        context = found and (found.get("effective_context_length") or found.get("context_length"))
        win = self.window(model, context or None, settings.max_tokens.value())
        system = settings.system.toPlainText()
        messages: list[JsonValue] = [{"role": "system", "content": system}]
        messages = messages if system.strip() else []
        try:
            fit([*messages, {"role": "user", "content": text}], win)
        except TooLong:
            return tr(TOO_LONG).format(context=size(win.context))
        return None


class FittingChat(ChatStream):
    """A chat stream whose messages are fitted to the model's window before sending, and
    fitted again (the node's count teaching the estimate) when it answers 400
    context_length_exceeded before any text arrived."""

    def __init__(
        self,
        client: ApiClient,
        body: JsonObject,
        fitting: Fitting,
        on_fit: Callable[[Fitted, Window], None],
    ) -> None:
        super().__init__(client, body)
        messages = body.get("messages")
        self.everything: list[JsonValue] = list(messages) if isinstance(messages, list) else []
        self.fitting = fitting
        self.on_fit = on_fit

    async def deltas(self) -> AsyncIterator[tuple[str, str]]:
        """Yield (field, text) as text arrives; raise ApiError with the reason on any
        failure."""
        model = str(self.body.get("model"))
        asked = self.body.get("max_tokens")
        max_tokens = asked if isinstance(asked, int) else 512
        win = self.fitting.window(model, await self._context(model), max_tokens)
        for attempt in range(RESENDS + 1):
            try:
                fitted = fit(self.everything, win)
            except TooLong as exc:
                reason = tr(TOO_LONG).format(context=size(win.context))
                raise ApiError(reason, 400, EXCEEDED) from exc
            self.body["messages"] = fitted.messages
            self.fitting.last = fitted
            self.on_fit(fitted, win)
            arrived = False
            try:
                async for piece in super().deltas():
                    arrived = True
                    yield piece
                return
            except ApiError as exc:
                counted = exceeded(exc.message) if exc.code == EXCEEDED else None
                if arrived or counted is None or attempt == RESENDS:
                    raise
                win = corrected(win, fitted.tokens, *counted)
                self.fitting.learned[model] = win
                self.fitting.resent += 1

    async def _context(self, model: str) -> int | None:
        """The model's context as /v1/models gives it (its effective size on the nodes)."""
        try:
            models = await self.client.openai_models()
        except ApiError:
            return None  # the request itself will say what is wrong
        found = next((m.get("context_length") for m in models if m["id"] == model), None)
        return found if isinstance(found, int) else None


class Marker(QLabel):
    """A quiet line in the conversation above the first message sent, when older ones were
    left out; files cut to fit are noted under their message.

    It lives in the conversation's `layout`; `widgets` gives the conversation's messages, the
    answer being written last."""

    def __init__(self, layout: QVBoxLayout, widgets: Callable[[], list[MessageWidget]]) -> None:
        super().__init__()
        self.conversation, self.widgets = layout, widgets
        layout.insertWidget(0, self)
        self.setObjectName("omitted")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setProperty("tone", "muted")  # in italics (app/ui/theme.py)
        self.noted: list[MessageWidget] = []  # messages whose stats line notes a cut file
        self.hide()

    def show_fit(self, fitted: Fitted, win: Window) -> None:
        """Place the line above the first message sent, or hide it when nothing was left
        out; note cut files."""
        # The history's messages, in order: those shown, less failed answers (never resent)
        # and the answer being written.
        shown = [w for w in self.widgets()[:-1] if not w._error]
        layout = self.conversation
        for widget in self.noted:
            if widget in shown:
                widget.stats.clear()
        self.noted = []
        context = size(win.context)
        for cut in fitted.cuts:
            if cut.index < len(shown):
                widget = shown[cut.index]
                note = tr(CUT).format(
                    name=cut.name,
                    context=context,
                    sent=f"{cut.sent_chars:,}",
                    total=f"{cut.total_chars:,}",
                )
                widget.stats.setText(note)
                self.noted.append(widget)
        layout.removeWidget(self)
        # `shown` should match the history message for message; if not, no line is better
        # than one in the wrong place.
        if len(shown) != fitted.history or not 0 < fitted.dropped < len(shown):
            self.hide()
            return
        layout.insertWidget(layout.indexOf(shown[fitted.dropped]), self)
        self.setText(tr(EARLIER).format(context=context))
        self.setAccessibleName(self.text())
        self.show()
