"""The Playground: chat with any ready model through the same /v1 endpoint users' tools use.

Saved conversations on the left (this module: list, open, delete); the chat on the right
(`chat_panel.py`: settings, transcript, streaming).
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import Conversation
from app.ui.asyncs import spawn
from app.ui.chat_panel import ChatPanel
from app.ui.chat_widgets import breakable
from app.ui.i18n import tr
from app.ui.state import UiState
from app.ui.widgets import confirm

TITLE_CHARS = 80  # a longer title is cut in the list (the whole of it is its tooltip)
TITLE_ROLE = Qt.ItemDataRole.UserRole + 1
SIDEBAR_PX = 200  # the conversation list's width to start with


class PlaygroundPage(QWidget):
    """Conversations on the left; the chat, its settings and the input on the right."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.chat = ChatPanel(state)
        self.chat.saved.connect(self.load_chats)
        split = QSplitter()
        split.addWidget(self._sidebar())
        split.addWidget(self.chat)
        split.setStretchFactor(1, 1)
        split.setSizes([SIDEBAR_PX, 4 * SIDEBAR_PX])
        QVBoxLayout(self).addWidget(split)

    def _sidebar(self) -> QWidget:
        box = QWidget()
        box.setMinimumWidth(SIDEBAR_PX * 3 // 4)  # titles stay readable
        layout = QVBoxLayout(box)
        self.new_button = QPushButton(tr("New chat"))
        self.new_button.clicked.connect(self.new_chat)
        self.chats = QListWidget()
        self.chats.setAccessibleName(tr("conversations"))
        # Titles wrap (anywhere, if they must) instead of running out of the list.
        self.chats.setWordWrap(True)
        self.chats.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chats.currentItemChanged.connect(lambda item, _old: self._open(item))
        self.delete_button = QPushButton(tr("Delete chat"))
        self.delete_button.clicked.connect(self.delete_chat)
        for w in (self.new_button, self.chats, self.delete_button):
            layout.addWidget(w)
        return box

    def load_chats(self) -> asyncio.Task[list[Conversation]]:
        """Fill the conversation list from the balancer."""

        def fill(chats: list[Conversation]) -> None:
            current = self.chat.conversation_id
            self.chats.blockSignals(True)
            self.chats.clear()
            for c in chats:
                title = c["title"]
                cut = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
                item = QListWidgetItem(breakable(cut))
                item.setToolTip(title)
                item.setData(Qt.ItemDataRole.UserRole, c["id"])
                item.setData(TITLE_ROLE, title)
                self.chats.addItem(item)
                if c["id"] == current:
                    self.chats.setCurrentItem(item)
            self.chats.blockSignals(False)

        return spawn(self.state.client.conversations(), on_error=self.chat.say, on_done=fill)

    def new_chat(self) -> None:
        """Start over in a fresh conversation (created when the first message is sent)."""
        self.chat.reset()
        self.chats.clearSelection()

    def _open(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self.open_chat(str(item.data(Qt.ItemDataRole.UserRole)))

    def open_chat(self, cid: str) -> None:
        """Show a stored conversation."""
        spawn(
            self.state.client.conversation(cid),
            on_error=self.chat.say,
            on_done=self.chat.show_conversation,
        )

    def delete_chat(self) -> None:
        """Delete the selected conversation, after confirmation."""
        item = self.chats.currentItem()
        if item is None:
            return
        cid = str(item.data(Qt.ItemDataRole.UserRole))

        def gone(_r: None) -> None:
            self.new_chat()
            self.load_chats()

        confirm(
            self,
            tr("Delete chat"),
            tr("Delete “{title}” and all its messages?").format(title=item.data(TITLE_ROLE)),
            lambda: spawn(
                self.state.client.delete_conversation(cid), on_error=self.chat.say, on_done=gone
            ),
        )
