"""The Model Hub tab: cards in the catalog's order, a search box, and a Register dialog."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.system import Machine
from app.core.wire import RegisterAnswer
from app.ui.asyncs import spawn
from app.ui.client import ApiError
from app.ui.fit import fleet_of
from app.ui.i18n import tr
from app.ui.model_card import ModelCard, retry_model
from app.ui.register_dialog import RegisterDialog
from app.ui.state import Part, UiState
from app.ui.widgets import confirm

log = logging.getLogger(__name__)

HIGHLIGHT_MS = 6000  # how long a card just registered stays outlined


class HubPage(QWidget):
    """The catalog as cards; updates in place from the state's refreshes."""

    def __init__(
        self,
        state: UiState,
        machine: Machine,
        parent: QWidget | None = None,
        remote: bool = False,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.machine = machine  # this machine's RAM until the local node reports its own
        self.remote = remote  # a remote balancer's window: fit is judged on its nodes
        self.fleet = fleet_of(state.nodes, machine, remote)
        self.cards: dict[str, ModelCard] = {}
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText(tr("Search models"))
        self.search.setAccessibleName(tr("Search models"))
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.register_button = QPushButton(tr("Register a model from Hugging Face"))
        self.register_button.clicked.connect(self.open_register_dialog)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.register_button)
        layout.addLayout(bar)
        # What just happened (a registration): said in words, not only by a closing dialog.
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName(tr("Status"))
        self.notice.hide()
        layout.addWidget(self.notice)
        self.empty = QLabel(tr("Loading the catalog…"))
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty)
        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        # The cards' buttons take focus; the scroll area itself would be an invisible tab stop.
        self.scroller.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list = QWidget()
        self.list_layout = QVBoxLayout(self.list)
        self.list_layout.addStretch(1)
        self.scroller.setWidget(self.list)
        layout.addWidget(self.scroller, 1)
        self.dialog: RegisterDialog | None = None
        self.reveal: str | None = None  # a model just registered whose card is not shown yet
        self.highlighted: str | None = None  # the card outlined now
        self._unhighlight = QTimer(self)
        self._unhighlight.setSingleShot(True)
        self._unhighlight.setInterval(HIGHLIGHT_MS)
        self._unhighlight.timeout.connect(self._clear_highlight)
        state.hubChanged.connect(self.refresh)
        # The fit badges follow what the nodes report (devices, memory): their heartbeats.
        state.nodesChanged.connect(self._nodes_changed)

    def refresh(self) -> None:
        """Add, update and remove cards to match the hub list (order kept)."""
        items = self.state.hub
        seen = set()
        for index, item in enumerate(items):
            key = str(item["id"])
            seen.add(key)
            card = self.cards.get(key)
            if card is None:
                card = ModelCard(item, self.fleet)
                card.action.connect(self._act)
                self.cards[key] = card
                self.list_layout.insertWidget(index, card)
            else:
                card.update_item(item)
                if self.list_layout.indexOf(card) != index:
                    self.list_layout.removeWidget(card)
                    self.list_layout.insertWidget(index, card)
        for key in list(self.cards):
            if key not in seen:
                card = self.cards.pop(key)
                self.list_layout.removeWidget(card)
                card.deleteLater()
        self.empty.setVisible(not items)
        self._filter(self.search.text())
        if self.reveal is not None and self.reveal in self.cards:
            self._reveal(self.reveal)

    async def _fetch_quantizations(self, key: str) -> None:
        card = self.cards.get(key)
        try:
            quants = await self.state.client.quantizations(key)
        except ApiError as exc:  # the Hub unreachable: the card offers its own file only
            log.info("no quantizations for %s: %s", key, exc.message)
            if card is not None and self.cards.get(key) is card:
                card.quantizations_failed()
            return
        if card is not None and self.cards.get(key) is card:
            card.set_quantizations(quants)

    def _nodes_changed(self) -> None:
        fleet = fleet_of(self.state.nodes, self.machine, self.remote)
        if fleet != self.fleet:
            self.fleet = fleet
            for card in self.cards.values():
                card.set_fleet(fleet)

    def _filter(self, text: str) -> None:
        shown = 0
        for card in self.cards.values():
            visible = card.matches(text)
            card.setVisible(visible)
            shown += visible
        if self.cards:
            self.empty.setText(tr("No model matches your search.") if not shown else "")
            self.empty.setVisible(not shown)

    def _act(self, verb: str, model_id: str) -> None:
        card = self.cards[model_id]
        name = card.title.text()
        if verb == "register":
            chosen = card.register_id()  # `<id>:<QUANT>` for a quantization picked on the card
            spawn(
                self.state.client.register(model_id=chosen),
                on_error=self.state.failed.emit,
                on_done=self._registered,
            )
        elif verb == "quantizations":  # its list was opened: what the repo offers
            spawn(self._fetch_quantizations(model_id))
        elif verb == "retry":
            retry_model(self.state, model_id)
        elif verb == "cancel":
            box = confirm(
                self,
                tr("Stop download"),
                tr("Stop downloading {name}? Its partial files are deleted.").format(name=name),
                lambda: self.state.delete(model_id),
                action=tr("Stop download"),
            )
            # Two buttons both starting "Cancel" read as the same choice.
            box.button(QMessageBox.StandardButton.Cancel).setText(tr("Keep downloading"))
        else:
            confirm(
                self,
                tr("Delete model"),
                tr("Delete {name}? Every node deletes its files.").format(name=name),
                lambda: self.state.delete(model_id),
            )

    def _registered(self, answer: RegisterAnswer) -> None:
        self.state.refresh(Part.MODELS)
        self.show_registered(answer["name"])

    def open_register_dialog(self) -> RegisterDialog:
        """The dialog that registers any Hugging Face repo or URL."""
        self.dialog = RegisterDialog(self.state, self)
        self.dialog.registered.connect(self.show_registered)
        self.dialog.open()
        return self.dialog

    def show_registered(self, model_id: str) -> None:
        """Say the model was registered, then scroll to its card and outline it once it shows
        (the list refreshes after the registration)."""
        self.reveal = model_id
        self.notice.setText(tr("Registered {name}.").format(name=model_id))
        self.notice.show()
        if model_id in self.cards:
            self._reveal(model_id)

    def _reveal(self, model_id: str) -> None:
        """Once per registration: later refreshes must not pull the list back to it."""
        self.reveal = None
        self._clear_highlight()
        card = self.cards[model_id]
        self.highlighted = model_id
        if not card.matches(self.search.text()):
            self.search.clear()  # the search hid it: show the whole list
        card.set_highlighted(True)
        self.notice.setText(
            tr("Registered {name}: its download starts now.").format(name=card.title.text())
        )
        self._unhighlight.start()
        # After the layout has placed a card just added: only then is its position known.
        QTimer.singleShot(0, lambda: self._scroll_to(model_id))

    def _scroll_to(self, model_id: str) -> None:
        card = self.cards.get(model_id)
        if card is not None:
            self.scroller.ensureWidgetVisible(card, 0, 0)

    def _clear_highlight(self) -> None:
        key, self.highlighted = self.highlighted, None
        card = self.cards.get(key) if key is not None else None
        if card is not None:
            card.set_highlighted(False)
