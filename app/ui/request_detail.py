"""One request in detail: what happened in plain words, the details on demand, and its bodies."""

from __future__ import annotations

import json

from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import RequestDetail
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.requests_model import failed, human_ms
from app.ui.theme import set_property
from app.ui.widgets import selectable_by_keyboard

# What the balancer keeps of each body (its BODY_CAP): the note on a cut body says so.
BODY_CAP_KB = 256

# Plain-words reasons, by what the balancer's error says (lower case), then by status.
BY_TEXT = (
    ("paused", QT_TR_NOOP("serving was paused in the llmlb app")),
    ("does not exist", QT_TR_NOOP("no model of that name is registered")),
    ("downloading", QT_TR_NOOP("the model is not ready (it is still downloading)")),
    ("failed on every node", QT_TR_NOOP("the model failed to load")),
    ("ready", QT_TR_NOOP("the model is not ready")),
    ("for a free node", QT_TR_NOOP("every node was busy and it waited too long")),
    ("did not respond", QT_TR_NOOP("the node did not respond")),
    ("timed out", QT_TR_NOOP("the node did not respond")),
    ("broke off", QT_TR_NOOP("the answer broke off")),
)
BY_STATUS = {
    400: QT_TR_NOOP("the request was not valid"),
    401: QT_TR_NOOP("the API key was missing or wrong"),
    403: QT_TR_NOOP("the API key may not use this"),
    404: QT_TR_NOOP("no model of that name is registered"),
    413: QT_TR_NOOP("the request was too large"),
    422: QT_TR_NOOP("the request was not valid"),
    429: QT_TR_NOOP("every node was busy and the queue was full"),
    499: QT_TR_NOOP("the client left before the answer"),
    502: QT_TR_NOOP("the node did not respond"),
    503: QT_TR_NOOP("the model is not ready"),
    504: QT_TR_NOOP("the node did not respond in time"),
}


def simple_reason(status: int, error: str | None) -> str:
    """Why a request failed, in words a user knows ("the node did not respond")."""
    text = (error or "").lower()
    if status == 429:  # its text speaks of the queue too, as a timeout's does
        return tr(BY_STATUS[status])
    for needle, reason in BY_TEXT:
        if needle in text:
            return tr(reason)
    if status in BY_STATUS:
        return tr(BY_STATUS[status])
    if status >= 500:
        return tr("the node reported an error")
    if status >= 400:
        return tr("the request was refused")
    return tr("the answer broke off")


def pretty(body: str | None) -> str:
    """A body as JSON indented for reading when it parses (a cut one does not), else as is."""
    if body is None:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


class BodyView(QWidget):
    """A caption, a note when the body was cut, and the body read-only."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel(caption)
        self.cut = QLabel(tr("Cut at {kb} KB: the rest was not kept.").format(kb=BODY_CAP_KB))
        set_property(self.cut, "tone", "warning")
        self.cut.setWordWrap(True)
        self.cut.hide()
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setTabChangesFocus(True)  # Tab leaves it: it is read, not typed in
        self.text.setAccessibleName(caption)
        layout.addWidget(self.caption)
        layout.addWidget(self.cut)
        layout.addWidget(self.text, 1)

    def show_body(self, body: str | None, truncated: bool) -> None:
        """Show `body` (pretty when it is JSON), marking a cut one."""
        self.text.setPlainText(pretty(body))
        self.cut.setVisible(truncated)

    def show_none(self) -> None:
        """Nothing picked (or the pick could not be read): empty, without a note."""
        self.text.setPlainText("")
        self.text.setPlaceholderText("")
        self.cut.hide()


class RequestDetailPane(QWidget):
    """The request picked in the history: the outcome, details on demand and both bodies."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.outcome = QLabel(tr("Pick a request to see what it sent and got."))
        self.outcome.setWordWrap(True)
        self.outcome.setAccessibleName(tr("what happened"))
        self.details_button = QPushButton(tr("Details"))
        self.details_button.setCheckable(True)
        self.details_button.setAccessibleName(tr("Show the details"))
        self.details_button.toggled.connect(self._toggle)
        self.details_button.hide()
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setAccessibleName(tr("request details"))
        selectable_by_keyboard(self.details)  # an error text is copied into a bug report
        self.details.hide()
        self.request = BodyView(tr("Request body"))
        self.response = BodyView(tr("Response body"))
        layout.addWidget(self.outcome)
        layout.addWidget(self.details_button)
        layout.addWidget(self.details)
        layout.addWidget(self.request, 1)
        layout.addWidget(self.response, 1)
        self.shown: RequestDetail | None = None

    def show_detail(self, detail: RequestDetail, node_name: str) -> None:
        """Show one request's outcome, details and bodies."""
        self.shown = detail
        if failed(detail):
            self.outcome.setText(
                tr("Failed: {reason}.").format(
                    reason=simple_reason(detail["status"], detail["error"])
                )
            )
            set_property(self.outcome, "tone", "error")
        else:
            self.outcome.setText(tr("Answered ({status}).").format(status=detail["status"]))
            set_property(self.outcome, "tone", None)
        self.details.setText(self._details_text(detail, node_name))
        self.details_button.show()
        self._toggle(self.details_button.isChecked())
        for view, body, cut in (
            (self.request, detail["request_body"], detail["request_truncated"]),
            (self.response, detail["response_body"], detail["response_truncated"]),
        ):
            view.show_body(body, cut)
            view.text.setPlaceholderText(tr("Not kept"))

    def show_problem(self, text: str) -> None:
        """The detail could not be fetched: say why."""
        self.shown = None
        self.outcome.setText(text)
        set_property(self.outcome, "tone", "error")
        self.details_button.hide()
        self.details.hide()
        self.request.show_none()
        self.response.show_none()

    def _toggle(self, on: bool) -> None:
        self.details.setVisible(on and self.shown is not None)

    @staticmethod
    def _details_text(d: RequestDetail, node_name: str) -> str:
        node = "—" if not d["node_id"] else f"{node_name} ({d['node_id']})"
        per_s = (
            f"{d['tokens_out'] / (d['generation_ms'] / 1000):.1f}"
            if d["tokens_out"] and d["generation_ms"]
            else "—"
        )
        lines = [
            (tr("Status"), str(d["status"])),
            (tr("Error"), d["error"] or "—"),
            (tr("Node"), node),
            (tr("API"), d["endpoint"] + (" (" + tr("streamed") + ")" if d["stream"] else "")),
            (tr("Model"), d["model"] or "—"),
            (tr("Client"), d["client"] or "—"),
            (tr("Time to first token"), human_ms(d["latency_ms"])),
            (tr("Duration"), human_ms(d["duration_ms"])),
            (tr("Generating"), human_ms(d["generation_ms"])),
            (tr("Tokens per second"), per_s),
        ]
        return "\n".join(f"{label}: {value}" for label, value in lines)
