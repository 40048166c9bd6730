"""Settings, on one page: port, LAN, data dir, idle unload, language, start at login."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.desktop_config import DesktopConfig, set_start_at_login
from app.core.wire import NewApiKey
from app.ui.connect_dialog import ServerBox
from app.ui.help import open_readme
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.state import UiState
from app.ui.widgets import confirm

# Each language by its own name; "Follow the system" in the language in force.
LANGUAGES = [("system", QT_TR_NOOP("Follow the system")), ("en", "English"), ("ja", "日本語")]
# What the user reads for the settings that need a restart (the config file's names are ours).
NEEDS_RESTART = {
    "port": QT_TR_NOOP("Port"),
    "serve_lan": QT_TR_NOOP("Serve on the LAN"),
    "data_dir": QT_TR_NOOP("Data folder"),
    "idle_unload_ttl": QT_TR_NOOP("Unload idle models after"),
}


class SettingsPage(QWidget):
    """Edits the desktop settings file; what needs a restart says so. A new language applies
    at once: the page asks for it (languageChosen, with the saved settings that still need a
    restart) and the window is built again in it."""

    languageChosen = Signal(str, list)

    def __init__(
        self,
        config: DesktopConfig,
        data_dir: str,
        state: UiState,
        parent: QWidget | None = None,
        port_in_use: int | None = None,
        restart_app: Callable[[], None] | None = None,
        remote: bool = False,
        switch_app: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.state = state
        # The port this run listens on (--port may differ from the saved one): the field shows
        # it, and saving keeps the saved port unless the user changes the field.
        self.port_in_use = port_in_use or config.port
        # In a scroll area: with a warning, a new key and a restart notice shown at once, the
        # page is taller than a 600 px window.
        scroller = QScrollArea()
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget()
        scroller.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroller)
        layout = QVBoxLayout(content)
        form = QFormLayout()
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(self.port_in_use)
        self._shown_port = self.port.value()  # as the field shows it (clamped to its range)
        self.port.setToolTip(tr("The port of the OpenAI-compatible endpoint"))
        self.port.setAccessibleName(tr("Port"))
        self.lan = QCheckBox(tr("Serve on the LAN (other machines may connect)"))
        self.lan.setToolTip(tr("On the LAN, /v1 needs an API key."))
        self.lan.setChecked(config.serve_lan)
        self.lan.toggled.connect(self._warn_lan)
        self._default_dir = data_dir
        self.data_dir = QLineEdit(config.data_dir or data_dir)
        self.data_dir.setToolTip(tr("The folder for the database, logs and model files"))
        self.data_dir.setAccessibleName(tr("Data folder"))
        self.idle = QSpinBox()
        self.idle.setRange(1, 24 * 60)
        self.idle.setSuffix(tr(" min"))
        self.idle.setValue(max(1, int(config.idle_unload_ttl // 60)))
        self.idle.setToolTip(tr("How long an unused model stays loaded in memory"))
        self.idle.setAccessibleName(tr("Unload idle models after"))
        self.language = QComboBox()
        for code, label in LANGUAGES:
            self.language.addItem(tr(label), code)
        self.language.setCurrentIndex(
            next((i for i, (c, _) in enumerate(LANGUAGES) if c == config.language), 0)
        )
        self.language.setAccessibleName(tr("Language"))
        self.login = QCheckBox(tr("Start llmlb when I log in"))
        self.login.setChecked(config.start_at_login)
        port_row = QHBoxLayout()
        port_row.addWidget(self.port)
        self.port_note = QLabel()
        if self.port_in_use != config.port:
            self.port_note.setText(
                tr("In use now (set for this run); saved: {port}").format(port=config.port)
            )
        port_row.addWidget(self.port_note, 1)
        form.addRow(tr("Port"), port_row)
        form.addRow(tr("Network"), self.lan)
        form.addRow("", self._lan_warning())
        form.addRow(tr("Data folder"), self.data_dir)
        form.addRow(tr("Unload idle models after"), self.idle)
        form.addRow(tr("Language"), self.language)
        form.addRow(tr("Start at login"), self.login)
        layout.addLayout(form)
        self.save_button = QPushButton(tr("Save"))
        self.save_button.clicked.connect(self.save)
        layout.addWidget(self.save_button)
        result_row = QHBoxLayout()
        self.result = QLabel()
        self.result.setWordWrap(True)
        result_row.addWidget(self.result, 1)
        self.restart_app = restart_app
        self.restart_button = QPushButton(tr("Restart now"))
        self.restart_button.clicked.connect(self._restart)
        self.restart_button.hide()
        result_row.addWidget(self.restart_button)
        layout.addLayout(result_row)
        self.server = ServerBox(config, state.client.base_url, remote, switch_app)
        layout.addWidget(self.server)
        if remote:  # the port, LAN, folder and idle unload are the embedded balancer's
            for local_only in (self.port, self.lan, self.data_dir, self.idle):
                local_only.setEnabled(False)
                local_only.setToolTip(tr("This computer's balancer only (not running now)"))
        layout.addWidget(self._cluster_box())
        layout.addWidget(self._keys_box())
        # Help: the README (setup, nodes, the API), in the desktop's viewer.
        self.help_button = QPushButton(tr("Help: open the README"))
        self.help_button.setAccessibleName(tr("Help: open the README"))
        self.help_button.clicked.connect(lambda: open_readme())
        layout.addWidget(self.help_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        state.nodesChanged.connect(self.refresh_cluster)
        self._shown_key: str | None = None  # the id of the new key whose secret is on screen
        self._shown_key_listed = False
        self._secret = ""  # its secret, for the Copy button
        self._warn_lan()

    def _cluster_box(self) -> QGroupBox:
        box = QGroupBox(tr("Cluster"))
        rows = QVBoxLayout(box)
        row, buttons = QHBoxLayout(), QHBoxLayout()
        rows.addLayout(row)
        rows.addLayout(buttons)  # below the token, so the box fits an 800 px window
        self.join_token = QLabel("…")
        self.join_token.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.join_token.setAccessibleName(tr("join token"))
        copy = QPushButton(tr("Copy"))
        copy.setAccessibleName(tr("copy the join token"))
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.join_token.text()))
        self.rotate = QPushButton(tr("New token"))
        self.rotate.clicked.connect(
            lambda: confirm(
                self,
                tr("New join token"),
                tr(
                    "Make a new join token? Nodes that already joined keep working; new ones "
                    "need the new token."
                ),
                self.state.rotate_join_token,
                action=tr("New token"),
            )
        )
        row.addWidget(QLabel(tr("Join token:")))
        row.addWidget(self.join_token, 1)
        buttons.addStretch(1)
        buttons.addWidget(copy)
        buttons.addWidget(self.rotate)
        return box

    def _lan_warning(self) -> QWidget:
        """Shown while LAN serving is on and no API key exists: /v1 would answer 401 to all."""
        self.lan_warning = QWidget()
        row = QHBoxLayout(self.lan_warning)
        row.setContentsMargins(0, 0, 0, 0)
        text = QLabel(
            "⚠ "
            + tr(
                "On the LAN, /v1 is locked to API keys and none exists yet: "
                "every tool gets 401 until it sends one."
            )
        )
        text.setWordWrap(True)
        text.setProperty("tone", "warning")
        self.lan_create_key = QPushButton(tr("Create an API key"))
        self.lan_create_key.clicked.connect(self._create_key_for_lan)
        row.addWidget(text, 1)
        row.addWidget(self.lan_create_key)
        self.lan_warning.hide()
        return self.lan_warning

    def _warn_lan(self) -> None:
        # Keys arrive with the cluster: before that first answer, "none exists" is not known.
        known = self.state.cluster is not None
        self.lan_warning.setVisible(self.lan.isChecked() and known and not self.state.api_keys)

    def _create_key_for_lan(self) -> None:
        if not self.key_name.text().strip():
            self.key_name.setText(tr("LAN clients"))
        self._create_key()

    def _keys_box(self) -> QGroupBox:
        box = QGroupBox(tr("API keys (needed by /v1 once one exists, or on the LAN)"))
        layout = QVBoxLayout(box)
        self.keys = QListWidget()
        self.keys.setAccessibleName(tr("API keys"))
        self.keys.setMaximumHeight(120)
        layout.addWidget(self.keys)
        row = QHBoxLayout()
        self.key_name = QLineEdit()
        self.key_name.setPlaceholderText(tr("name of the new key (e.g. my editor)"))
        self.key_name.setAccessibleName(tr("new API key name"))
        self.create_key = QPushButton(tr("Create key"))
        self.create_key.clicked.connect(self._create_key)
        self.revoke_key = QPushButton(tr("Revoke"))
        self.revoke_key.clicked.connect(self._revoke_key)
        row.addWidget(self.key_name, 1)
        row.addWidget(self.create_key)
        row.addWidget(self.revoke_key)
        layout.addLayout(row)
        shown = QHBoxLayout()
        self.new_key = QLabel()
        self.new_key.setWordWrap(True)
        self.new_key.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.new_key.setAccessibleName(tr("new API key"))
        self.copy_key = QPushButton(tr("Copy"))
        self.copy_key.setAccessibleName(tr("copy the new API key"))
        self.copy_key.hide()
        self.copy_key.clicked.connect(lambda: QGuiApplication.clipboard().setText(self._secret))
        shown.addWidget(self.new_key, 1)
        shown.addWidget(self.copy_key, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(shown)
        return box

    def refresh_cluster(self) -> None:
        """Show the join token and the keys (never their secrets)."""
        cluster = self.state.cluster
        self.join_token.setText(cluster["join_token"] if cluster else "…")
        self.keys.clear()
        for key in self.state.api_keys:
            item = QListWidgetItem(
                f"{key['name']}  ({key['prefix']}…)  ·  {last_used(key['last_used_at'])}"
            )
            item.setData(Qt.ItemDataRole.UserRole, key["id"])
            self.keys.addItem(item)
        listed = any(k["id"] == self._shown_key for k in self.state.api_keys)
        if listed:
            self._shown_key_listed = True
        elif self._shown_key_listed:  # listed before, gone now: revoked (here or elsewhere)
            self._hide_secret()
        self._warn_lan()

    def _create_key(self) -> None:
        name = self.key_name.text().strip()
        if not name:
            self.new_key.setText(tr("Give the key a name first."))
            return

        def shown(key: NewApiKey) -> None:
            self.key_name.clear()
            self._shown_key, self._shown_key_listed = key["id"], False
            self.new_key.setText(
                tr("New key “{name}”: {key}\nCopy it now: it is not shown again.").format(
                    name=key["name"], key=key["key"]
                )
            )
            self._secret = key["key"]
            self.copy_key.show()

        self.state.create_key(name, shown)

    def _revoke_key(self) -> None:
        item = self.keys.currentItem()
        if item is None:
            return
        key_id = str(item.data(Qt.ItemDataRole.UserRole))

        def revoke() -> None:
            if key_id == self._shown_key:
                self._hide_secret()  # a revoked key's secret has nothing left to show
            self.state.revoke_key(key_id)

        confirm(
            self,
            tr("Revoke API key"),
            tr("Revoke {key}? Tools using it stop working.").format(key=item.text()),
            revoke,
            action=tr("Revoke"),
        )

    def _hide_secret(self) -> None:
        self._shown_key, self._shown_key_listed = None, False
        self._secret = ""
        self.new_key.clear()
        self.copy_key.hide()

    def save(self) -> None:
        """Write the settings file; say what needs a restart."""
        before = self.config.as_dict()
        if self.port.value() != self._shown_port:  # else keep the saved one (see __init__)
            self.config.port = self.port.value()
        self.config.serve_lan = self.lan.isChecked()
        folder = self.data_dir.text().strip()
        self.config.data_dir = "" if folder == self._default_dir else folder
        self.config.idle_unload_ttl = float(self.idle.value() * 60)
        self.config.language = str(self.language.currentData())
        self.config.start_at_login = self.login.isChecked()
        try:
            self.config.save()
            if before["start_at_login"] != self.config.start_at_login:
                if getattr(sys, "frozen", False):  # the bundle: the program itself
                    command = sys.executable
                else:
                    command = shutil.which("llmlb") or f"{sys.executable} -m app"
                set_start_at_login(self.config.start_at_login, command)
        except OSError as exc:
            self.result.setText(
                tr("Could not save the settings: {reason}").format(reason=exc.strerror)
            )
            return
        after = self.config.as_dict()
        restart = [key for key in NEEDS_RESTART if before[key] != after[key]]
        if before["language"] != after["language"]:
            self.languageChosen.emit(self.config.language, restart)  # the window is rebuilt
            return
        self.show_saved(restart)

    def show_saved(self, restart: list[str]) -> None:
        """Say the settings were saved, and which of them (NEEDS_RESTART's keys) wait for a
        restart, with the button that restarts."""
        if not restart:
            self.result.setText(tr("Saved."))
            return
        labels = ", ".join(tr(NEEDS_RESTART[key]) for key in restart)
        self.result.setText(tr("Saved. Restart llmlb to apply: {settings}").format(settings=labels))
        self.restart_button.setVisible(self.restart_app is not None)

    def _restart(self) -> None:
        if self.restart_app is not None:
            self.restart_app()


def last_used(at: float | None, now: float | None = None) -> str:
    """'never used', 'used just now', 'used 5 min ago', 'used 3 h ago' or 'used on 2026-11-02'."""
    if at is None:
        return tr("never used")
    ago = (time.time() if now is None else now) - at
    if ago < 60:
        return tr("used just now")
    if ago < 3600:
        return tr("used {n} min ago").format(n=int(ago // 60))
    if ago < 86400:
        return tr("used {n} h ago").format(n=int(ago // 3600))
    return tr("used on {date}").format(date=time.strftime("%Y-%m-%d", time.localtime(at)))
