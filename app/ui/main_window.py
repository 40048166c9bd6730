"""The main window: a shell of sidebar, pages and a banner (the pages do the work)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QMainWindow,
    QStackedWidget,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.desktop_config import DesktopConfig
from app.core.system import Machine
from app.ui.hub_page import HubPage
from app.ui.i18n import tr
from app.ui.local_page import LocalPage
from app.ui.nodes_page import NodesPage
from app.ui.overview_page import OverviewPage
from app.ui.playground_page import PlaygroundPage
from app.ui.settings_page import SettingsPage
from app.ui.state import UiState
from app.ui.widgets import Banner

PAGES = ("Overview", "Models", "Playground", "Nodes", "Settings")


class MainWindow(QMainWindow):
    """Sidebar + stacked pages; closing hides to the tray when there is one."""

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
        self.sidebar.setAccessibleName("sections")
        self.sidebar.setFixedWidth(170)
        # Styled by the app's sheet (app/ui/theme.py): a sheet of its own would keep the
        # palette of the scheme it was styled in, and stay light after a switch to dark.
        self.sidebar.setObjectName("sidebar")
        for name in PAGES:
            self.sidebar.addItem(tr(name))
        self.pages = QStackedWidget()
        self.overview = OverviewPage(state)
        self.hub = HubPage(state, machine, remote=remote)
        self.local = LocalPage(state)
        self.models = QTabWidget()
        self.models.addTab(self.hub, tr("Model Hub"))
        self.models.addTab(self.local, tr("Local"))
        self.playground = PlaygroundPage(state)
        self.nodes = NodesPage(state)
        self.settings = SettingsPage(
            config,
            data_dir,
            state,
            port_in_use=port_in_use,
            restart_app=restart_app,
            remote=remote,
            switch_app=switch_app,
        )
        for page in (self.overview, self.models, self.playground, self.nodes, self.settings):
            self.pages.addWidget(page)
        self.sidebar.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        body.addWidget(self.sidebar)
        body.addWidget(self.pages, 1)
        outer.addLayout(body, 1)
        self.setCentralWidget(root)
        self.overview.wantsHub.connect(self.show_hub)
        self.overview.wantsKeys.connect(self.show_keys)
        state.failed.connect(self.banner.show_message)
        state.connectionChanged.connect(self._connection)
        state.hubChanged.connect(self._serving)  # what the pause state arrives with

    def show_page(self, name: str) -> None:
        """Switch to a page by its English name (Overview, Models, Settings)."""
        self.sidebar.setCurrentRow(PAGES.index(name))

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
            if self.banner.label.text().startswith("Lost connection"):
                self.banner.hide()
        else:
            self.banner.show_message(
                f"Lost connection to the balancer: {reason}. Retrying in the background…"
            )

    def closeEvent(self, event: QCloseEvent) -> None:
        """Keep serving from the tray; without a tray, closing quits."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            event.ignore()
            self.hide()
        else:
            event.accept()
            self.quit_app()
