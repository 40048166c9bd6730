"""Settings, on one page: port, LAN, data dir, idle unload, language, start at login."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.desktop_config import DesktopConfig, set_start_at_login
from app.core.settings import Settings
from app.core.wire import NewApiKey
from app.ui.i18n import set_language, tr
from app.ui.state import UiState
from app.ui.widgets import confirm

LANGUAGES = [("system", "Follow the system"), ("en", "English"), ("ja", "日本語")]
# What the user reads for the settings that need a restart (the config file's names are ours).
NEEDS_RESTART = {
    "port": "Port",
    "serve_lan": "Serve on the LAN",
    "data_dir": "Data folder",
    "idle_unload_ttl": "Unload idle models after",
    "language": "Language",
}


class SettingsPage(QWidget):
    """Edits the desktop settings file; what needs a restart says so."""

    def __init__(
        self,
        config: DesktopConfig,
        data_dir: str,
        state: UiState,
        parent: QWidget | None = None,
        port_in_use: int | None = None,
        restart_app: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.state = state
        # The port this run listens on (--port may differ from the saved one): the field shows
        # it, and saving keeps the saved port unless the user changes the field.
        self.port_in_use = port_in_use or config.port
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(self.port_in_use)
        self._shown_port = self.port.value()  # as the field shows it (clamped to its range)
        self.port.setToolTip(Settings.help("port"))
        self.port.setAccessibleName("port")
        self.lan = QCheckBox(
            "Serve on the LAN (other machines may connect; /v1 then needs an API key)"
        )
        self.lan.setChecked(config.serve_lan)
        self._default_dir = data_dir
        self.data_dir = QLineEdit(config.data_dir or data_dir)
        self.data_dir.setToolTip(Settings.help("data_dir"))
        self.data_dir.setAccessibleName("data folder")
        self.idle = QSpinBox()
        self.idle.setRange(1, 24 * 60)
        self.idle.setSuffix(" min")
        self.idle.setValue(max(1, int(config.idle_unload_ttl // 60)))
        self.idle.setToolTip(Settings.help("idle_unload_ttl"))
        self.idle.setAccessibleName("unload idle models after")
        self.language = QComboBox()
        for code, label in LANGUAGES:
            self.language.addItem(label, code)
        self.language.setCurrentIndex(
            next((i for i, (c, _) in enumerate(LANGUAGES) if c == config.language), 0)
        )
        self.language.setAccessibleName(tr("Language"))
        self.login = QCheckBox("Start llmlb when I log in")
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
        form.addRow("Network", self.lan)
        form.addRow("Data folder", self.data_dir)
        form.addRow("Unload idle models after", self.idle)
        form.addRow(tr("Language"), self.language)
        form.addRow("Start at login", self.login)
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
        layout.addWidget(self._cluster_box())
        layout.addWidget(self._keys_box())
        layout.addStretch(1)
        state.nodesChanged.connect(self.refresh_cluster)

    def _cluster_box(self) -> QGroupBox:
        box = QGroupBox("Cluster")
        row = QHBoxLayout(box)
        self.join_token = QLabel("…")
        self.join_token.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.join_token.setAccessibleName("join token")
        copy = QPushButton("Copy")
        copy.setAccessibleName("copy the join token")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.join_token.text()))
        self.rotate = QPushButton("New token")
        self.rotate.clicked.connect(
            lambda: confirm(
                self,
                "New join token",
                "Make a new join token? Nodes that already joined keep working; new ones "
                "need the new token.",
                self.state.rotate_join_token,
                action="New token",
            )
        )
        row.addWidget(QLabel("Join token:"))
        row.addWidget(self.join_token, 1)
        row.addWidget(copy)
        row.addWidget(self.rotate)
        return box

    def _keys_box(self) -> QGroupBox:
        box = QGroupBox("API keys (needed by /v1 once one exists, or when serving the LAN)")
        layout = QVBoxLayout(box)
        self.keys = QListWidget()
        self.keys.setAccessibleName("API keys")
        self.keys.setMaximumHeight(120)
        layout.addWidget(self.keys)
        row = QHBoxLayout()
        self.key_name = QLineEdit()
        self.key_name.setPlaceholderText("name of the new key (e.g. my editor)")
        self.key_name.setAccessibleName("new API key name")
        self.create_key = QPushButton("Create key")
        self.create_key.clicked.connect(self._create_key)
        self.revoke_key = QPushButton("Revoke")
        self.revoke_key.clicked.connect(self._revoke_key)
        row.addWidget(self.key_name, 1)
        row.addWidget(self.create_key)
        row.addWidget(self.revoke_key)
        layout.addLayout(row)
        self.new_key = QLabel()
        self.new_key.setWordWrap(True)
        self.new_key.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.new_key)
        return box

    def refresh_cluster(self) -> None:
        """Show the join token and the keys (never their secrets)."""
        cluster = self.state.cluster
        self.join_token.setText(cluster["join_token"] if cluster else "…")
        self.keys.clear()
        for key in self.state.api_keys:
            item = QListWidgetItem(f"{key['name']}  ({key['prefix']}…)")
            item.setData(Qt.ItemDataRole.UserRole, key["id"])
            self.keys.addItem(item)

    def _create_key(self) -> None:
        name = self.key_name.text().strip()
        if not name:
            self.new_key.setText("Give the key a name first.")
            return

        def shown(key: NewApiKey) -> None:
            self.key_name.clear()
            self.new_key.setText(
                f"New key “{key['name']}”: {key['key']}\nCopy it now: it is not shown again."
            )

        self.state.create_key(name, shown)

    def _revoke_key(self) -> None:
        item = self.keys.currentItem()
        if item is None:
            return
        key_id = str(item.data(Qt.ItemDataRole.UserRole))
        confirm(
            self,
            "Revoke API key",
            f"Revoke {item.text()}? Tools using it stop working.",
            lambda: self.state.revoke_key(key_id),
            action="Revoke",
        )

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
            self.result.setText(f"Could not save the settings: {exc.strerror}")
            return
        set_language(self.config.language)
        restart = [
            tr(label) for k, label in NEEDS_RESTART.items() if before[k] != self.config.as_dict()[k]
        ]
        if not restart:
            self.result.setText(tr("Saved."))
            return
        self.result.setText(tr("Saved. Restart llmlb to apply: ") + ", ".join(restart))
        self.restart_button.setVisible(self.restart_app is not None)

    def _restart(self) -> None:
        if self.restart_app is not None:
            self.restart_app()
