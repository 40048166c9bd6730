"""Settings, on one page: port, LAN, data dir, idle unload, language, start at login."""

from __future__ import annotations

import shutil
import sys

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.desktop_config import DesktopConfig, set_start_at_login
from app.core.settings import Settings
from app.ui.i18n import set_language, tr

LANGUAGES = [("system", "Follow the system"), ("en", "English"), ("ja", "日本語")]


class SettingsPage(QWidget):
    """Edits the desktop settings file; what needs a restart says so."""

    def __init__(self, config: DesktopConfig, data_dir: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config = config
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(config.port)
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
        form.addRow("Port", self.port)
        form.addRow("Network", self.lan)
        form.addRow("Data folder", self.data_dir)
        form.addRow("Unload idle models after", self.idle)
        form.addRow(tr("Language"), self.language)
        form.addRow("Start at login", self.login)
        layout.addLayout(form)
        self.save_button = QPushButton(tr("Save"))
        self.save_button.clicked.connect(self.save)
        layout.addWidget(self.save_button)
        self.result = QLabel()
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        layout.addStretch(1)

    def save(self) -> None:
        """Write the settings file; say what needs a restart."""
        before = self.config.as_dict()
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
            k
            for k in ("port", "serve_lan", "data_dir", "idle_unload_ttl", "language")
            if before[k] != self.config.as_dict()[k]
        ]
        self.result.setText(
            "Saved. Restart llmlb to apply: " + ", ".join(restart) if restart else "Saved."
        )
