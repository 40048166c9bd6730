"""One model in the Hub: name, description, sizes, popularity, fit, status and its action."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFocusEvent, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.system import Fit, Machine
from app.core.types import HubStatus, Lifecycle
from app.core.wire import HubEntry, Quantization
from app.ui.asyncs import spawn
from app.ui.download_text import progress_text, retry_text
from app.ui.fit import Fleet, verdict
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.state import Part, UiState
from app.ui.theme import set_property
from app.ui.widgets import Badge, CardState, human_bytes, human_count


def card_state(item: HubEntry) -> CardState:
    """What the badge shows for a hub entry or a registered model."""
    lifecycle = item.get("lifecycle_status")
    if lifecycle is None:
        return CardState.AVAILABLE
    if lifecycle == Lifecycle.READY:
        return CardState.READY
    if lifecycle == Lifecycle.ERROR:
        return CardState.ERROR
    if item["status"] == HubStatus.DOWNLOADING:
        return CardState.DOWNLOADING
    return CardState.REGISTERED


def retry_model(state: UiState, name: str) -> asyncio.Task[list[str]]:
    """A Retry button's action: every node holding `name` in error tries it again; the
    models are fetched again (their state is what the nodes now report)."""
    return spawn(
        state.client.retry_model(name),
        on_error=state.failed.emit,
        on_done=lambda _nodes: state.refresh(Part.MODELS),
    )


VERBS = {
    "register": QT_TR_NOOP("Register"),
    "cancel": QT_TR_NOOP("Cancel"),
    "delete": QT_TR_NOOP("Delete"),
}
VERB_NAMES = {  # what a screen reader says for the card's button
    "register": QT_TR_NOOP("Register {name}"),
    "cancel": QT_TR_NOOP("Cancel {name}"),
    "delete": QT_TR_NOOP("Delete {name}"),
}


class QuantBox(QComboBox):
    """The quantization list; `opened` when it is opened or focused (by mouse or keyboard)."""

    opened = Signal()

    def showPopup(self) -> None:
        self.opened.emit()
        super().showPopup()

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.opened.emit()
        super().focusInEvent(event)


def _own_quantization(item: HubEntry) -> list[Quantization]:
    """The catalog's own file as the first choice; none for a model that offers no other (a
    Hugging Face repo registered by URL, a quantization registered already)."""
    quant = item.get("quantization")
    if not quant or ":" in str(item["id"]) or item.get("source", "catalog") != "catalog":
        return []
    size, memory = item.get("size_bytes") or 0, item.get("required_memory_bytes") or 0
    own: Quantization = {
        "quantization": quant,
        "size_bytes": size,
        "required_memory_bytes": memory,
        "default": True,
    }
    return [own]


class ModelCard(QFrame):
    """A card; `action` is emitted with (verb, model id) when its button is pressed."""

    action = Signal(str, str)

    def __init__(
        self, item: HubEntry, machine: Machine | Fleet, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.model_id = str(item["id"])
        # The machines the fit badge judges: this one alone, or as the nodes report them.
        self.fleet = machine if isinstance(machine, Fleet) else Fleet(machine)
        self.setObjectName("card")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(14, 10, 14, 10)
        top = QHBoxLayout()
        self.title = QLabel()
        self.title.setWordWrap(True)  # long model names wrap in a narrow window
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.title.setFont(font)
        self.fit_badge = Badge(Fit.FITS)
        self.status = Badge(CardState.AVAILABLE)
        self.button = QPushButton()
        self.button.clicked.connect(self._clicked)
        # Only for a model in error: every node holding it in error tries it again.
        self.retry_button = QPushButton(tr("Retry"))
        self.retry_button.setProperty("verb", "retry")
        self.retry_button.clicked.connect(lambda: self.action.emit("retry", self.model_id))
        self.retry_button.hide()
        # A catalog model not registered yet: its repo's other quantizations, asked for the
        # first time the list is opened or focused (not for every card of the Hub at once);
        # Register registers the one chosen, and the sizes and fit follow it.
        self.quants: list[Quantization] = _own_quantization(item)
        self.quants_state = "" if self.quants else "none"  # "", "asking" or "known"
        self.quant = QuantBox()
        self.quant.setAccessibleName(tr("Quantization"))
        self.quant.setToolTip(
            tr("Smaller quantizations need less memory; larger ones answer better.")
        )
        for q in self.quants:
            self.quant.addItem(q["quantization"], q["quantization"])
        self.quant.currentIndexChanged.connect(self._quant_chosen)
        self.quant.opened.connect(self._want_quantizations)
        # A row of its own under the sizes: beside the title it would widen a narrow window.
        self.quant_row = QWidget()
        row = QHBoxLayout(self.quant_row)
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel(tr("Quantization"))
        label.setBuddy(self.quant)
        row.addWidget(label)
        row.addWidget(self.quant)
        row.addStretch(1)
        self.quant_row.hide()
        top.addWidget(self.title, 1)
        top.addWidget(self.fit_badge)
        top.addWidget(self.status)
        top.addWidget(self.retry_button)
        top.addWidget(self.button)
        outer.addLayout(top)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setMaximumHeight(self.description.fontMetrics().lineSpacing() * 2 + 4)
        outer.addWidget(self.description)
        self.meta = QLabel()
        self.meta.setWordWrap(True)  # sizes, context, tags: a second line in a narrow window
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.meta)
        outer.addWidget(self.quant_row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.hide()
        outer.addWidget(self.progress)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setProperty("tone", "error")
        self.error.hide()
        outer.addWidget(self.error)
        # While a download waits to retry, its "retrying in N s" counts down.
        self.countdown = QTimer(self)
        self.countdown.setInterval(1000)
        self.countdown.timeout.connect(self._show_error)
        self.update_item(item)

    def update_item(self, item: HubEntry, force: bool = False) -> None:
        """Show the item's current values (called on every refresh: cheap, in place)."""
        if not force and getattr(self, "item", None) == item:
            return
        self.item = item.copy()  # the state patches its entries in place: keep what is shown
        self.title.setText(item.get("name") or self.model_id)
        self.description.setText(item.get("description") or item.get("repo", ""))
        chosen = self.chosen()
        size = chosen["size_bytes"] if chosen else item.get("size_bytes")
        memory = chosen["required_memory_bytes"] if chosen else item.get("required_memory_bytes")
        parts = [
            tr("{size} file").format(size=human_bytes(size)),
            tr("{size} memory").format(size=human_bytes(memory)),
        ]
        context = item.get("context_length")
        here = item.get("effective_context_length")
        if context:
            text = tr("{n}k context").format(n=context // 1024)
            if here and here < context:  # what this cluster's memory gives a conversation
                text += " " + tr("({n}k here)").format(n=max(1, here // 1024))
            parts.append(text)
        quantization = chosen["quantization"] if chosen else item.get("quantization")
        if quantization:
            parts.append(quantization)
        info = item.get("hf_info")
        if info:
            parts.append(
                f"⬇ {human_count(info.get('downloads'))}  ♥ {human_count(info.get('likes'))}"
            )
        tags = item.get("tags") or []
        if tags:
            parts.append(", ".join(tags))
        self.meta.setText("  ·  ".join(parts))
        self._show_fit()
        state = card_state(item)
        self.status.set_state(state)
        progress = item.get("download_progress")
        if state == CardState.DOWNLOADING and progress:
            self.progress.setValue(int(progress["percent"] * 10))
            self.progress.setFormat(progress_text(progress))
            self.progress.show()
        else:
            self.progress.hide()
        self._show_error()
        verb = {CardState.AVAILABLE: "register", CardState.DOWNLOADING: "cancel"}.get(
            state, "delete"
        )
        self.button.setText(tr(VERBS[verb]))
        self.button.setProperty("verb", verb)
        self.button.setAccessibleName(tr(VERB_NAMES[verb]).format(name=self.title.text()))
        self.retry_button.setAccessibleName(tr("Retry {name}").format(name=self.title.text()))
        self.retry_button.setVisible(state == CardState.ERROR)
        self.quant_row.setVisible(state == CardState.AVAILABLE and bool(self.quants))
        self.setAccessibleName(f"{self.title.text()}, {self.status.text()}")

    def _show_error(self) -> None:
        """An error, or while downloading why the download waits and when it tries again."""
        item = self.item
        state = card_state(item)
        progress = item.get("download_progress")
        retry_at = progress.get("retry_at") if progress else None
        waiting = state == CardState.DOWNLOADING and retry_at is not None
        text = str(item.get("error") or "")
        self.error.setText(retry_text(text, retry_at) if waiting and text else text)
        set_property(self.error, "tone", "error" if state == CardState.ERROR else "warning")
        self.error.setVisible(state in (CardState.ERROR, CardState.DOWNLOADING) and bool(text))
        if waiting and text and not self.countdown.isActive():
            self.countdown.start()
        elif not (waiting and text):
            self.countdown.stop()

    def set_fleet(self, fleet: Fleet) -> None:
        """Judge the fit again on the machines as the nodes now report them."""
        if fleet != self.fleet:
            self.fleet = fleet
            self._show_fit()

    def _show_fit(self) -> None:
        chosen = self.chosen()
        need = chosen["required_memory_bytes"] if chosen else self.item.get("required_memory_bytes")
        judged = verdict(int(need or 0), self.fleet)
        self.fit_badge.set_state(judged.fit, judged.label)
        self.fit_badge.setToolTip(judged.tooltip)
        self._label_quants()

    def _want_quantizations(self) -> None:
        if not self.quants_state:
            self.quants_state = "asking"
            self.action.emit("quantizations", self.model_id)

    def quantizations_failed(self) -> None:
        """The balancer could not say (the Hub unreachable): ask again at the next opening."""
        self.quants_state = ""

    def set_quantizations(self, quants: list[Quantization]) -> None:
        """Offer the quantizations the model's repo holds (the catalog's own first, chosen)."""
        if not quants:
            return
        self.quants_state = "known"
        self.quants = list(quants)
        popup = self.quant.view().isVisible()  # opened while asking: shown again, complete
        if popup:
            self.quant.hidePopup()
        self.quant.blockSignals(True)
        self.quant.clear()
        for q in self.quants:
            self.quant.addItem(q["quantization"], q["quantization"])
        self.quant.setCurrentIndex(next((i for i, q in enumerate(quants) if q["default"]), 0))
        self.quant.blockSignals(False)
        self._label_quants()
        self._refresh_shown()
        if popup:
            self.quant.showPopup()

    def _label_quants(self) -> None:
        """Each choice with its file size and whether it fits, judged as the badge judges."""
        for i, q in enumerate(self.quants[: self.quant.count()]):
            judged = verdict(q["required_memory_bytes"], self.fleet)
            text = f"{q['quantization']} · {human_bytes(q['size_bytes'])} · {judged.label}"
            self.quant.setItemText(i, text)

    def chosen(self) -> Quantization | None:
        """The quantization picked on the card; None when the card offers none."""
        index = self.quant.currentIndex()
        return self.quants[index] if 0 <= index < len(self.quants) else None

    def register_id(self) -> str:
        """What Register registers: the model, or `<id>:<QUANT>` for another quantization."""
        chosen = self.chosen()
        if chosen is None or chosen["default"]:
            return self.model_id
        return f"{self.model_id}:{chosen['quantization']}"

    def _quant_chosen(self) -> None:
        self._refresh_shown()

    def _refresh_shown(self) -> None:
        self.update_item(self.item, force=True)

    def _clicked(self) -> None:
        self.action.emit(str(self.button.property("verb")), self.model_id)

    def matches(self, text: str) -> bool:
        """Whether the search text is in the id, display name, description, tags or
        capabilities ("chat" finds every chat model, not only those with it in their name)."""
        needle = text.strip().lower()
        if not needle:
            return True
        item = self.item
        fields = [
            self.model_id,
            item.get("name") or "",
            item.get("description") or "",
            item.get("repo") or "",
            *(item.get("tags") or []),
            *(item.get("capabilities") or []),
        ]
        return any(needle in str(f).lower() for f in fields)

    def set_highlighted(self, on: bool) -> None:
        """Outline the card (the model just registered) so the eye finds it in the list."""
        set_property(self, "highlighted", on)  # outlined in the accent (app/ui/theme.py)
