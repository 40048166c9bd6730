"""The Model Hub tab: cards in the catalog's order, a search box, and a Register dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.system import Machine
from app.ui.i18n import tr
from app.ui.model_card import ModelCard
from app.ui.register_dialog import RegisterDialog
from app.ui.state import UiState
from app.ui.widgets import confirm


class HubPage(QWidget):
    """The catalog as cards; updates in place from the state's refreshes."""

    def __init__(self, state: UiState, machine: Machine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.machine = machine
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
        self.empty = QLabel("Loading the catalog…")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty)
        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        self.list = QWidget()
        self.list_layout = QVBoxLayout(self.list)
        self.list_layout.addStretch(1)
        self.scroller.setWidget(self.list)
        layout.addWidget(self.scroller, 1)
        self.dialog: RegisterDialog | None = None
        state.hubChanged.connect(self.refresh)

    def refresh(self) -> None:
        """Add, update and remove cards to match the hub list (order kept)."""
        items = self.state.hub
        seen = set()
        for index, item in enumerate(items):
            key = str(item["id"])
            seen.add(key)
            card = self.cards.get(key)
            if card is None:
                card = ModelCard(item, self.machine)
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

    def _filter(self, text: str) -> None:
        shown = 0
        for card in self.cards.values():
            visible = card.matches(text)
            card.setVisible(visible)
            shown += visible
        if self.cards:
            self.empty.setText("No model matches your search." if not shown else "")
            self.empty.setVisible(not shown)

    def _act(self, verb: str, model_id: str) -> None:
        card = self.cards[model_id]
        name = card.title.text()
        if verb == "register":
            self.state.register(model_id=model_id)
        elif verb == "cancel":
            confirm(
                self,
                "Cancel download",
                f"Stop downloading {name}? Its partial files are deleted.",
                lambda: self.state.delete(model_id),
                action="Cancel download",
            )
        else:
            confirm(
                self,
                "Delete model",
                f"Delete {name}? Every node deletes its files.",
                lambda: self.state.delete(model_id),
            )

    def open_register_dialog(self) -> RegisterDialog:
        """The dialog that registers any Hugging Face repo or URL."""
        self.dialog = RegisterDialog(self.state, self)
        self.dialog.open()
        return self.dialog
