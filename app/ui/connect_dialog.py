"""Managing another machine's balancer: the connection check, the "Connect to a server…"
dialog and the Settings box that says which balancer this window manages."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable

import aiohttp
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.desktop_config import DesktopConfig
from app.core.remote import BadServerUrl, RemoteTokens, in_clear, normalize_url, pinned
from app.ui.asyncs import spawn
from app.ui.client import ApiClient, ApiError
from app.ui.i18n import tr

CHECK_TIMEOUT = 5.0


def clear_warning() -> str:
    """What sending the admin token over plain http across a network means."""
    return tr(
        "Over http the admin token crosses the network unencrypted: on a network you do not "
        "trust, run the server with `llmlb serve --tls` and connect with https."
    )


def _unreachable(url: str, exc: BaseException | None) -> str:
    """Why `url` could not be reached, in words ("connection refused", "timed out", …)."""
    cause = getattr(exc, "os_error", None) or exc
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        why = tr("its TLS certificate is not the one the fingerprint names")
    elif isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):  # before its OSError cause
        why = tr("its TLS certificate is not trusted (give its fingerprint)")
    elif isinstance(cause, OSError) and (cause.errno or cause.strerror):
        # asyncio's refusal reads "Connect call failed (...)"; the errno's words read better.
        why = (os.strerror(cause.errno) if cause.errno else str(cause.strerror)).lower()
    elif isinstance(cause, TimeoutError):
        why = tr("no answer in time")
    else:
        why = str(cause) if cause else tr("no answer")
    return tr("Could not reach {url}: {why}.").format(url=url, why=why)


async def check_server(url: str, token: str, fingerprint: str | None = None) -> None:
    """Return when `url` is an llmlb balancer that takes `token` as its admin token (and, for
    https, shows the certificate `fingerprint` pins); raise ApiError with the reason in words
    otherwise (wrong token, refused, untrusted certificate, not llmlb)."""
    client = ApiClient(url, token, timeout=CHECK_TIMEOUT, fingerprint=fingerprint)
    try:
        await client.cluster()  # needs the admin token: a wrong one answers 401
    except ApiError as exc:
        if exc.status is None:
            raise ApiError(_unreachable(url, exc.__cause__)) from exc
        if exc.status in (401, 403):
            raise ApiError(
                tr(
                    "{url} refused the admin token: check it (it is in the file admin_token in "
                    "that server's data folder)."
                ).format(url=url),
                exc.status,
            ) from exc
        if exc.status == 404:
            raise ApiError(
                tr("{url} answered, but it is not an llmlb balancer (check the port).").format(
                    url=url
                ),
                exc.status,
            ) from exc
        raise ApiError(
            tr("{url} answered {status}: {reason}").format(
                url=url, status=exc.status, reason=exc.message
            ),
            exc.status,
        ) from exc
    finally:
        await client.close()


class ConnectDialog(QDialog):
    """URL and admin token of a balancer on another machine; tested, then remembered (the
    URL in the settings file, the token in the OS keyring)."""

    def __init__(
        self,
        config: DesktopConfig,
        tokens: RemoteTokens,
        parent: QWidget | None = None,
        current: str = "",
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.tokens = tokens
        self.setWindowTitle(tr("Connect to a server"))
        layout = QVBoxLayout(self)
        intro = QLabel(
            tr(
                "Manage a balancer that runs on another machine (`llmlb serve`). Nothing runs "
                "on this computer while this window manages it."
            )
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url = QLineEdit(config.server_url or current)  # `current`: the --connect one
        self.url.setPlaceholderText("http://192.168.1.20:8080")
        self.url.setAccessibleName(tr("server address"))
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText(tr("the server's admin token (llmlb-admin-…)"))
        self.token.setAccessibleName(tr("admin token"))
        self.fingerprint = QLineEdit()
        self.fingerprint.setPlaceholderText(
            tr("https only: the sha256 `llmlb serve --tls` prints for its certificate")
        )
        self.fingerprint.setAccessibleName(tr("TLS certificate fingerprint"))
        self.url.editingFinished.connect(self._fill_token)
        self._fill_token()
        form.addRow(tr("Server"), self.url)
        form.addRow(tr("Admin token"), self.token)
        form.addRow(tr("Certificate"), self.fingerprint)
        layout.addLayout(form)
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setAccessibleName(tr("connection test result"))
        layout.addWidget(self.outcome)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.test_button = self.buttons.addButton(
            tr("Test the connection"), QDialogButtonBox.ButtonRole.ActionRole
        )
        self.connect_button = self.buttons.addButton(
            tr("Connect"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.test_button.clicked.connect(lambda: self.test(remember=False))
        self.connect_button.clicked.connect(lambda: self.test(remember=True))
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.task: asyncio.Task[None] | None = None
        self.resize(520, self.sizeHint().height())

    def _fill_token(self) -> None:
        """A server connected to before: its kept token, so the user need not find it again."""
        try:
            kept = self.tokens.get(self.url.text()) if self.url.text().strip() else None
        except BadServerUrl:
            return
        if kept and not self.token.text():
            self.token.setText(kept)
        pin = self.tokens.pin(self.url.text()) if kept else None
        if pin and not self.fingerprint.text():
            self.fingerprint.setText(pin)

    def test(self, remember: bool) -> None:
        """Check the server answers and takes the token; with `remember`, keep it and accept."""
        try:
            url = normalize_url(self.url.text())
            fingerprint = pinned(self.fingerprint.text())
        except BadServerUrl as exc:
            self.outcome.setText(str(exc))
            return
        token = self.token.text().strip()
        if not token:
            self.outcome.setText(tr("Enter the server's admin token."))
            return
        self.outcome.setText(tr("Connecting to {url}…").format(url=url))
        self.buttons.setEnabled(False)

        def done(_: None) -> None:
            self.buttons.setEnabled(True)
            said = tr("Connected: {url} took the admin token.").format(url=url)
            if in_clear(url):
                said += " " + clear_warning()
            self.outcome.setText(said)
            if remember:
                self.tokens.set(url, token)
                if fingerprint:
                    self.tokens.set_pin(url, fingerprint)
                self.config.server_url = url
                self.config.save()
                self.accept()

        def failed(reason: str) -> None:
            self.buttons.setEnabled(True)
            self.outcome.setText(reason)

        check = check_server(url, token, fingerprint)
        self.task = spawn(check, on_error=failed, on_done=done)


class ServerBox(QGroupBox):
    """Which balancer this window manages; "Connect to a server…" and back to this computer."""

    def __init__(
        self,
        config: DesktopConfig,
        current_url: str,
        remote: bool,
        switch_app: Callable[[], None] | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tr("Server"), parent)
        self.config = config
        self.switch_app = switch_app
        self.current_url, self.remote = current_url, remote
        layout = QVBoxLayout(self)
        if remote:
            text = tr(
                "This window manages the balancer at {url}. The settings above are this "
                "computer's and do not change that server."
            ).format(url=current_url)
        else:
            text = tr("This window manages the balancer on this computer.")
        self.where = QLabel(text)
        self.where.setWordWrap(True)
        layout.addWidget(self.where)
        row = QHBoxLayout()
        self.connect_button = QPushButton(tr("Connect to a server…"))
        self.connect_button.clicked.connect(self.choose_server)
        self.local_button = QPushButton(tr("Use this computer"))
        self.local_button.setToolTip(tr("Run the balancer and its node on this computer again"))
        self.local_button.clicked.connect(self.use_this_computer)
        self.local_button.setVisible(remote or bool(config.server_url))
        row.addWidget(self.connect_button)
        row.addWidget(self.local_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.dialog: ConnectDialog | None = None

    def choose_server(self) -> None:
        """Open the dialog; once it connected, start again on that server."""
        tokens = RemoteTokens(DesktopConfig.path().parent)
        current = self.current_url if self.remote else ""
        self.dialog = ConnectDialog(self.config, tokens, self, current)
        self.dialog.accepted.connect(self._switch)
        self.dialog.open()

    def use_this_computer(self) -> None:
        """Forget the saved server (its token stays in the keyring) and start again locally."""
        self.config.server_url = ""
        self.config.save()
        self._switch()

    def _switch(self) -> None:
        if self.switch_app is not None:
            self.switch_app()
