"""The desktop app's parts, wired: client, state, window, tray (given a running balancer)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from PySide6.QtWidgets import QApplication

from app.core.desktop_config import DesktopConfig
from app.core.instance import instance_key
from app.core.remote import remote_instance_key
from app.core.system import Machine, probe
from app.ui import theme
from app.ui.asyncs import spawn
from app.ui.client import ApiClient
from app.ui.i18n import set_language
from app.ui.instance import InstanceServer
from app.ui.main_window import MainWindow
from app.ui.state import UiState
from app.ui.tray import Tray

log = logging.getLogger(__name__)


class Desktop:
    """Everything the user sees, for one balancer: the embedded one, or with `remote` a
    balancer on another machine (`llmlb --connect`), which this app only manages."""

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
        remote: bool = False,
    ) -> None:
        set_language(config.language)
        theme.follow_os(app)
        self.client = ApiClient(base_url, admin_token, fingerprint=tls_fingerprint)
        self.state = UiState(self.client)
        self.quit_app = quit_app
        self.restart_requested = False  # _gui_main runs the same command line again when set
        self.switch_requested = False  # ... without --connect: the saved server decides
        self.remote = remote
        self.window = MainWindow(
            self.state,
            machine or probe(),
            config,
            data_dir,
            quit_app,
            port_in_use=None if remote else urlsplit(base_url).port,
            restart_app=self.restart,
            remote=remote,
            switch_app=self.switch,
        )
        self.window.languageChosen.connect(self.change_language)
        self.tray = Tray(self.state, self.open_window, quit_app)
        self.data_dir = Path(data_dir)
        # One window per data folder, or per server: what a later launch asks to show.
        self.instance_name = (
            remote_instance_key(base_url) if remote else instance_key(self.data_dir)
        )
        self.instance: InstanceServer | None = None

    def start(self) -> None:
        """Show the window and start following the balancer."""
        self.state.start()
        # Later launches on this data folder show this window instead of starting another app.
        self.instance = InstanceServer(self.instance_name, self._asked_to_show)
        self.window.playground.load_chats()
        self.open_window()
        # Everything built so far lives as long as the app: keep it out of the cyclic
        # collector's full passes, which otherwise stall the event loop for tens of ms.
        gc.collect()
        gc.freeze()

    def change_language(self, choice: str, restart: list[str] | None = None) -> None:
        """Switch the UI's language live (Settings): a streaming answer is saved first, then
        the window and the tray are built again in the new language."""

        async def switch() -> None:
            await self.window.playground.chat.interrupt()
            set_language(choice)
            self.window.retranslate()
            self.tray.retranslate()
            self.window.settings.show_saved(restart or [])
            log.info("switched the UI's language to %s", choice)

        # The banner of the window as it is when the error comes (rebuilt by then, maybe).
        spawn(switch(), on_error=lambda text: self.window.banner.show_message(text))

    def open_window(self) -> None:
        """Bring the window up."""
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def _asked_to_show(self) -> None:
        self.open_window()
        log.info("raised the window for a later launch")

    def restart(self) -> None:
        """Quit cleanly, then start again with the same command line (settings that need it)."""
        self.restart_requested = True
        self.quit_app()

    def switch(self) -> None:
        """Quit, then start again on the server (or this computer) saved in the settings."""
        self.switch_requested = True
        self.restart()

    async def close(self) -> None:
        """Save a streaming answer, stop following, hide the tray icon, close the window."""
        await self.window.playground.chat.interrupt()  # before the client it saves through
        if self.instance is not None:
            self.instance.close()
        self.state.stop()
        self.tray.icon.hide()
        self.window.hide()
        await self.client.close()
