"""The main window: a shell of sidebar, pages and a banner (the pages do the work)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QListWidget,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QSystemTrayIcon,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.desktop_config import DesktopConfig
from app.core.system import Machine
from app.ui.hub_page import HubPage
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.local_page import LocalPage
from app.ui.logs_page import LogsPage
from app.ui.nodes_page import NodesPage
from app.ui.overview_page import OverviewPage
from app.ui.playground_page import PlaygroundPage
from app.ui.requests_page import RequestsPage
from app.ui.settings_page import SettingsPage
from app.ui.state import UiState
from app.ui.widgets import Banner

PAGES = ("Overview", "Models", "Playground", "Nodes", "Requests", "Logs", "Settings")
PAGE_NAMES = (  # the sidebar's words for PAGES
    QT_TR_NOOP("Overview"),
    QT_TR_NOOP("Models"),
    QT_TR_NOOP("Playground"),
    QT_TR_NOOP("Nodes"),
    QT_TR_NOOP("Requests"),
    QT_TR_NOOP("Logs"),
    QT_TR_NOOP("Settings"),
)


class MainWindow(QMainWindow):
    """Sidebar + stacked pages; closing hides to the tray when there is one."""

    languageChosen = Signal(str, list)  # Settings saved a new language (and what needs a restart)

    def __init__(
        self,
        state: UiState,
        machine: Machine,
        config: DesktopConfig,
        data_dir: str,
        quit_app: Callable[[], None],
        port_in_use: int | None = None,
        restart_app: Callable[[], None] | None = None,
        remote: bool = False,
        switch_app: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.state = state
        self.quit_app = quit_app
        # A window on another machine's balancer says which one, in the title bar.
        self.setWindowTitle(f"llmlb — {state.client.base_url}" if remote else "llmlb")
        self.resize(QSize(1100, 760))
        self._page_args = (machine, config, data_dir, port_in_use, restart_app, remote, switch_app)
        self._build()
        for i in range(len(PAGES)):  # once: the window's content is rebuilt on a language switch
            QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self).activated.connect(
                lambda i=i: self.open_section(i)
            )
        state.failed.connect(self._failed)
        state.connectionChanged.connect(self._connection)
        state.hubChanged.connect(self._serving)  # what the pause state arrives with

    def _build(self) -> None:
        """The banners, sidebar and pages, in the language in force."""
        state = self.state
        machine, config, data_dir, port_in_use, restart_app, remote, switch_app = self._page_args
        root = QWidget()
        outer = QVBoxLayout(root)
        outer.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner()
        outer.addWidget(self.banner)
        paused_text = tr("Serving is paused — /v1 requests are refused until you resume.")
        # Pausing is a state the user chose, not a problem: shown while it lasts, with the way
        # back, in a calmer colour than errors.
        self.paused = Banner(kind="paused", action=tr("Resume"), dismissible=False)
        self.paused.label.setText(paused_text)
        self.paused.setAccessibleName(tr("Serving is paused"))
        assert self.paused.action is not None
        self.paused.action.setAccessibleName(tr("Resume serving"))
        self.paused.action.clicked.connect(lambda: state.set_paused(False))
        outer.addWidget(self.paused)
        body = QHBoxLayout()
        self.sidebar = QListWidget()
        self.sidebar.setAccessibleName(tr("sections"))
        self.sidebar.setFixedWidth(170)
        # Styled by the app's sheet (app/ui/theme.py): a sheet of its own would keep the
        # palette of the scheme it was styled in, and stay light after a switch to dark.
        self.sidebar.setObjectName("sidebar")
        for i, name in enumerate(PAGE_NAMES):
            self.sidebar.addItem(tr(name))
            # Ctrl+1…7 opens a section (the shortcuts: __init__); its tooltip says so.
            keys = QKeySequence(f"Ctrl+{i + 1}").toString(QKeySequence.SequenceFormat.NativeText)
            self.sidebar.item(i).setToolTip(f"{tr(name)} ({keys})")
        self.pages = QStackedWidget()
        self.overview = OverviewPage(state)
        self.hub = HubPage(state, machine, remote=remote)
        self.local = LocalPage(state)
        self.models = QTabWidget()
        self.models.addTab(self.hub, tr("Model Hub"))
        self.models.addTab(self.local, tr("Local"))
        self.playground = PlaygroundPage(state)
        self.nodes = NodesPage(state)
        self.requests = RequestsPage(state)
        self.logs = LogsPage(state)
        self.settings = SettingsPage(
            config,
            data_dir,
            state,
            port_in_use=port_in_use,
            restart_app=restart_app,
            remote=remote,
            switch_app=switch_app,
        )
        for page in (
            self.overview,
            self.models,
            self.playground,
            self.nodes,
            self.requests,
            self.logs,
            self.settings,
        ):
            self.pages.addWidget(page)
        self.sidebar.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        body.addWidget(self.sidebar)
        body.addWidget(self.pages, 1)
        outer.addLayout(body, 1)
        self.setCentralWidget(root)
        self.overview.wantsHub.connect(self.show_hub)
        self.overview.wantsKeys.connect(self.show_keys)
        self.settings.languageChosen.connect(self.languageChosen)
        self._serving()

    def retranslate(self) -> None:
        """Build the window's content again in the language now installed (Settings switches
        it live): every page reads the new language, on the same page and chat as before."""
        row = self.sidebar.currentRow()
        models_tab = self.models.currentIndex()
        chat = self.playground.chat.conversation_id
        self._build()
        self.sidebar.setCurrentRow(row)
        self.models.setCurrentIndex(models_tab)
        self.playground.load_chats()
        if chat is not None:
            self.playground.open_chat(chat)
        # The new pages draw what the app already knows now, not at the next change.
        self.state.hubChanged.emit()
        self.state.nodesChanged.emit()

    def _failed(self, text: str) -> None:
        self.banner.setProperty("lost", False)  # a connection coming back leaves this shown
        self.banner.show_message(text)

    def show_page(self, name: str) -> None:
        """Switch to a page by its English name (Overview, Models, Settings)."""
        self.sidebar.setCurrentRow(PAGES.index(name))

    def open_section(self, row: int) -> None:
        """Show a section and put focus on the sidebar: Tab goes on into the page."""
        self.sidebar.setCurrentRow(row)
        self.sidebar.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def show_hub(self) -> None:
        """The Model Hub, where a model is found and registered."""
        self.models.setCurrentWidget(self.hub)
        self.show_page("Models")
        self.hub.search.setFocus()  # the next thing a newcomer does is look for a model

    def show_keys(self) -> None:
        """Settings, ready to name a new API key."""
        self.show_page("Settings")
        self.settings.key_name.setFocus()

    def _serving(self) -> None:
        self.paused.setVisible(self.state.serving_paused)

    def _connection(self, connected: bool, reason: str) -> None:
        if connected:
            if self.banner.property("lost"):
                self.banner.hide()
        else:
            self.banner.show_message(
                tr("Lost connection to the balancer: {reason}. Retrying in the background…").format(
                    reason=reason
                )
            )
        self.banner.setProperty("lost", not connected)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter presses the focused button, as Space does (Qt does it only in dialogs)."""
        focused = QApplication.focusWidget()
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and isinstance(focused, QPushButton | QToolButton) and self.isAncestorOf(focused):
            focused.click()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Keep serving from the tray; without a tray, closing quits."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            event.ignore()
            self.hide()
        else:
            event.accept()
            self.quit_app()
