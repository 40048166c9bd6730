"""The desktop app's parts, wired: client, state, window, tray (given a running balancer)."""

from __future__ import annotations

import gc
from collections.abc import Callable

from PySide6.QtWidgets import QApplication

from app.core.desktop_config import DesktopConfig
from app.core.system import Machine, probe
from app.ui import theme
from app.ui.client import ApiClient
from app.ui.i18n import set_language
from app.ui.main_window import MainWindow
from app.ui.state import UiState
from app.ui.tray import Tray


class Desktop:
    """Everything the user sees, for one balancer."""

    def __init__(
        self,
        app: QApplication,
        base_url: str,
        admin_token: str,
        config: DesktopConfig,
        data_dir: str,
        quit_app: Callable[[], None],
        machine: Machine | None = None,
        tls_fingerprint: str | None = None,
    ) -> None:
        set_language(config.language)
        theme.follow_os(app)
        self.client = ApiClient(base_url, admin_token, fingerprint=tls_fingerprint)
        self.state = UiState(self.client)
        self.window = MainWindow(self.state, machine or probe(), config, data_dir, quit_app)
        self.tray = Tray(self.state, self.open_window, quit_app)

    def start(self) -> None:
        """Show the window and start following the balancer."""
        self.state.start()
        self.window.playground.load_chats()
        self.open_window()
        # Everything built so far lives as long as the app: keep it out of the cyclic
        # collector's full passes, which otherwise stall the event loop for tens of ms.
        gc.collect()
        gc.freeze()

    def open_window(self) -> None:
        """Bring the window up."""
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    async def close(self) -> None:
        """Save a streaming answer, stop following, hide the tray icon, close the window."""
        await self.window.playground.chat.interrupt()  # before the client it saves through
        self.state.stop()
        self.tray.icon.hide()
        self.window.hide()
        await self.client.close()
