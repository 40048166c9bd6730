"""Managing a headless `llmlb serve` from the window: --connect, Settings → Server, and the
readable refusals (wrong token, nobody listening)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QMessageBox

from app import main as entry
from app.core.desktop_config import DesktopConfig
from app.core.instance import RESTART, SWITCH
from app.core.remote import RemoteTokens
from app.core.tls import fingerprint_of
from app.ui.app_run import remote_main
from app.ui.client import ApiError
from app.ui.connect_dialog import ConnectDialog, ServerBox, check_server
from app.ui.desktop import Desktop
from tests.support.waiting import eventually_sync
from tests.test_main import free_port, llmlb, wait_until_serving
from tests.ui.conftest import MACHINE, App, qt_app

pytestmark = pytest.mark.slow

QUIET_HUB = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # the catalog model never downloads


@dataclass
class Served:
    """A real headless balancer on 127.0.0.1."""

    proc: subprocess.Popen[str]
    url: str
    token: str
    data: Path

    def post(self, path: str, body: object) -> int:
        req = urllib.request.Request(
            self.url + path,
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)


def _listening(proc: subprocess.Popen[str], port: int) -> bool:
    assert proc.poll() is None, "llmlb serve exited early"
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def served(tmp_path: Path, local_node: bool = True, tls: bool = False) -> Iterator[Served]:
    """`llmlb serve` in its own process (with its local node unless told otherwise)."""
    port, data = free_port(), tmp_path / "server-data"
    args = ["serve", "--port", str(port), "--data-dir", str(data), *(["--tls"] if tls else [])]
    proc = subprocess.Popen(
        llmlb(*args, *([] if local_node else ["--no-local-node"])),
        env={**os.environ, **QUIET_HUB},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        if tls:
            eventually_sync(lambda: _listening(proc, port), timeout=60)
        else:
            wait_until_serving(proc, port, timeout=60)
        token = (data / "admin_token").read_text().strip()
        scheme = "https" if tls else "http"
        yield Served(proc, f"{scheme}://127.0.0.1:{port}", token, data)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def remote_gui(
    qloop: qasync.QEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, Served]]:
    """The window on a real headless balancer in another process, as `llmlb --connect` opens."""
    monkeypatch.setenv("LLMLB_CONFIG_DIR", str(tmp_path / "config"))
    with served(tmp_path) as server:
        assert server.post("/v0/models/register", {"model_id": "qwen3"}) == 201
        desktop = Desktop(
            qt_app(),
            server.url,
            server.token,
            DesktopConfig(),
            str(tmp_path / "unused-local-data"),
            lambda: None,
            MACHINE,
            remote=True,
        )
        desktop.start()
        app = App(qloop, None, desktop, [])  # type: ignore[arg-type]  # no local balancer
        try:
            yield app, server
        finally:
            app.run(desktop.close())
            desktop.window.deleteLater()


def test_the_window_on_a_remote_server_lists_its_nodes_and_models(
    remote_gui: tuple[App, Served], tmp_path: Path
) -> None:
    gui, server = remote_gui
    window = gui.desktop.window
    state = gui.desktop.state
    gui.wait(lambda: state.nodes and any(m["id"] == "qwen3" for m in state.models))
    assert [n["kind"] for n in state.nodes] == ["local"]  # the server's own node, over there
    gui.wait(lambda: state.connected)  # its event socket too, with the admin token
    assert server.url in window.windowTitle()
    window.show_page("Nodes")  # the pages show what the server holds
    nodes = window.nodes.table.model()
    gui.wait(lambda: nodes.rowCount() == 1)
    assert nodes.index(0, 0).data() == "this computer"  # the server's name for its own node
    gui.wait(lambda: window.local.table.rowCount() == 1)
    assert window.local.table.item(0, 0).text() == "Qwen3 0.6B"
    window.show_page("Settings")
    page = window.settings
    gui.wait(lambda: page.join_token.text() != "…")  # the server's join token, read remotely
    assert f"manages the balancer at {server.url}" in page.server.where.text()
    # The embedded balancer's settings say they are this computer's, not the server's.
    assert not page.port.isEnabled() and not page.lan.isEnabled()
    assert not page.data_dir.isEnabled() and not page.idle.isEnabled()
    assert page.server.local_button.isVisibleTo(page)
    gui.screenshot(window, "settings-remote-server")
    # Nothing of this computer's data folder was made: no balancer runs here.
    assert not (tmp_path / "unused-local-data").exists()


@pytest.fixture
def own_logging() -> Iterator[None]:
    """remote_main sets the app's logging up on this test's captured stderr: undone after, so
    later tests do not log to a closed stream."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    for handler in before:
        if handler not in root.handlers:
            root.addHandler(handler)


def _connect_fails(gui: App, url: str, token: str, monkeypatch: pytest.MonkeyPatch) -> str:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a: shown.append(str(a[2])))
    config = DesktopConfig()
    code = gui.run(remote_main(qt_app(), url, token, config, Path("/nonexistent")))
    assert code == 2
    [message] = shown
    return message


def test_a_wrong_token_or_nobody_listening_is_one_readable_message(
    own_logging: None,
    qloop: qasync.QEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gui = App(qloop, None, None, [])  # type: ignore[arg-type]
    with served(tmp_path, local_node=False) as server:
        message = _connect_fails(gui, server.url, "llmlb-admin-not-the-token", monkeypatch)
        assert message == (
            f"{server.url} refused the admin token: check it (it is in the file admin_token in "
            "that server's data folder)."
        )
    nobody = f"http://127.0.0.1:{free_port()}"
    message = _connect_fails(gui, nobody, "llmlb-admin-anything", monkeypatch)
    assert message == f"Could not reach {nobody}: connection refused."
    err = capsys.readouterr().err
    assert f"llmlb: {message}" in err and "Traceback" not in err


def test_a_saved_server_that_is_gone_offers_this_computer(
    own_logging: None, qloop: qasync.QEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Launched from a menu on a saved server that no longer answers: no dead end.
    monkeypatch.setenv("LLMLB_CONFIG_DIR", str(tmp_path / "config"))
    gui = App(qloop, None, None, [])  # type: ignore[arg-type]
    nobody = f"http://127.0.0.1:{free_port()}"
    config = DesktopConfig(server_url=nobody)
    config.save()
    main = remote_main(qt_app(), nobody, "llmlb-admin-kept", config, tmp_path, saved=True)
    task = asyncio.ensure_future(main, loop=qloop)

    def box() -> QMessageBox | None:
        shown = [w for w in qt_app().topLevelWidgets() if isinstance(w, QMessageBox)]
        return next((w for w in shown if w.isVisible()), None)

    asked = gui.wait(box)
    assert asked.text() == f"Could not reach {nobody}: connection refused."
    [local] = [b for b in asked.buttons() if b.text() == "Use this computer"]
    gui.screenshot(asked, "connect-saved-server-gone")
    local.click()
    assert gui.run(task) == SWITCH  # started again, on this computer
    assert DesktopConfig.load().server_url == ""
    asked.deleteLater()


def test_an_https_server_is_managed_once_its_certificate_is_pinned(
    own_logging: None,
    qloop: qasync.QEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMLB_CONFIG_DIR", str(tmp_path / "config"))
    gui = App(qloop, None, None, [])  # type: ignore[arg-type]
    with served(tmp_path, local_node=False, tls=True) as server:
        pem = (server.data / "tls" / "cert.pem").read_text()
        fingerprint = fingerprint_of(ssl.PEM_cert_to_DER_cert(pem))
        # Nobody signed its certificate: without the fingerprint, a readable refusal.
        message = _connect_fails(gui, server.url, server.token, monkeypatch)
        assert message == (
            f"Could not reach {server.url}: its TLS certificate is not trusted (give its "
            "fingerprint)."
        )
        wrong = fingerprint[::-1]
        with pytest.raises(ApiError, match="not the one the fingerprint names"):
            gui.run(check_server(server.url, server.token, wrong))
        # Typed as people copy it (colons, capitals), tested, and kept with the token.
        dialog = ConnectDialog(DesktopConfig(), RemoteTokens(tmp_path / "config"))
        dialog.url.setText(server.url)
        dialog.token.setText(server.token)
        typed = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
        dialog.fingerprint.setText(typed)
        dialog.connect_button.click()
        gui.wait(lambda: dialog.outcome.text().startswith("Connected"))
    assert RemoteTokens(tmp_path / "config").pin(server.url) == fingerprint


def test_connect_to_a_server_tests_remembers_and_switches(
    qloop: qasync.QEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMLB_CONFIG_DIR", str(tmp_path / "config"))
    gui = App(qloop, None, None, [])  # type: ignore[arg-type]
    switched: list[bool] = []
    config = DesktopConfig()
    box = ServerBox(config, "http://127.0.0.1:8080", False, lambda: switched.append(True))
    assert box.where.text() == "This window manages the balancer on this computer."
    assert not box.local_button.isVisibleTo(box)  # already this computer
    with served(tmp_path, local_node=False) as server:
        box.connect_button.click()
        dialog = box.dialog
        assert isinstance(dialog, ConnectDialog)
        dialog.url.setText(server.url.removeprefix("http://") + "/v1")  # as people paste it
        dialog.token.setText("llmlb-admin-not-the-token")
        dialog.connect_button.click()
        gui.wait(lambda: "refused the admin token" in dialog.outcome.text())
        assert switched == [] and DesktopConfig.load().server_url == ""  # nothing kept
        dialog.token.setText(server.token)
        dialog.test_button.click()
        gui.wait(lambda: dialog.outcome.text().startswith("Connected"))
        assert switched == []  # a test only
        dialog.connect_button.click()
        gui.wait(lambda: switched == [True])
    saved = DesktopConfig.path().read_text()
    assert json.loads(saved)["server_url"] == server.url
    assert server.token not in saved  # the token lives in the keyring (here its fallback)
    assert RemoteTokens(tmp_path / "config").get(server.url) == server.token
    # Reopened, the dialog knows the server's token; and the way back to this computer.
    again = ConnectDialog(DesktopConfig.load(), RemoteTokens(tmp_path / "config"))
    assert again.token.text() == server.token
    back = ServerBox(DesktopConfig.load(), server.url, True, lambda: switched.append(True))
    assert back.local_button.isVisibleTo(back)
    back.connect_button.click()  # opened from a window on a server: that server is filled in
    assert back.dialog is not None and back.dialog.url.text() == server.url
    back.dialog.reject()
    back.local_button.click()
    assert switched == [True, True] and DesktopConfig.load().server_url == ""


def test_switching_server_restarts_without_the_connect_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["/usr/bin/python3", "-m", "app", "--connect", "http://h:1", "--token=t", "--port", "9"]
    monkeypatch.setattr(sys, "orig_argv", argv)
    ran: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, args: ran.append(list(args)))
    assert entry._after_gui(SWITCH) == 0
    assert entry._after_gui(RESTART) == 0
    assert ran == [[sys.executable, "-m", "app", "--port", "9"], [sys.executable, *argv[1:]]]


def _window_until_term(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a GUI process until it says it manages the server, then SIGTERM it."""
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        eventually_sync(
            lambda: proc.poll() is not None or any("managing the balancer" in x for x in lines),
            timeout=60,
        )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        proc.kill()
        reader.join(timeout=10)
    return code, "".join(lines)


def test_llmlb_connect_keeps_the_token_in_the_keyring_and_starts_nothing_here(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        **QUIET_HUB,
        "QT_QPA_PLATFORM": "offscreen",
        "LLMLB_CONFIG_DIR": str(tmp_path / "config"),
        "LLMLB_DATA_DIR": str(tmp_path / "local-data"),
        # A real keyring backend (a file one, in this test's home), not the user's own.
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    with served(tmp_path, local_node=False) as server:
        first = llmlb("--connect", server.url, "--token", server.token)
        code, err = _window_until_term(first, env)
        assert code == 0, err
        assert f"managing the balancer at {server.url}" in err and "Traceback" not in err
        # The next launch needs no --token: it is in the keyring, and not in the settings.
        code, err = _window_until_term(llmlb("--connect", server.url), env)
        assert code == 0, err
        assert f"managing the balancer at {server.url}" in err
    assert (home / ".local" / "share" / "python_keyring").is_dir()
    assert not (tmp_path / "config" / "secrets.json").exists()  # no fallback file was needed
    assert not (tmp_path / "local-data").exists()  # no local balancer, no local node
