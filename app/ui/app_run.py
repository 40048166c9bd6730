"""The window's life on the one qasync loop (shown, run until quit, closed), and the window on
a remote balancer (`llmlb --connect URL`), which starts nothing on this computer."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import qasync
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__
from app.core.desktop_config import DesktopConfig
from app.core.errors import StartupError
from app.core.instance import RESTART, SWITCH, describe, running_instance
from app.core.logs import setup_logging
from app.core.remote import RemoteTokens, in_clear, normalize_url, pinned
from app.core.secrets import TOKEN_FILE
from app.ui.client import ApiError
from app.ui.connect_dialog import check_server, clear_warning
from app.ui.desktop import Desktop
from app.ui.fonts import ensure_japanese
from app.ui.i18n import tr
from app.ui.instance import hand_over_to_running, hand_over_to_window_on

log = logging.getLogger("llmlb")


async def run_window(
    app: QApplication, desktop: Desktop, shutdown: asyncio.Event, announce: str
) -> int:
    """Show the window, run until Quit/SIGTERM/SIGINT sets `shutdown`, close it; 0, RESTART
    or SWITCH."""
    ensure_japanese(app)  # no installed Japanese font: the bundle's, so no text shows as boxes
    app.aboutToQuit.connect(shutdown.set)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: shutdown.set())
    wake = QTimer()  # lets Python run its signal handlers while Qt waits
    wake.start(200)
    desktop.start()
    print(announce, file=sys.stderr, flush=True)
    await shutdown.wait()
    log.info("quitting")
    wake.stop()
    await desktop.close()
    if desktop.switch_requested:
        return SWITCH
    return RESTART if desktop.restart_requested else 0


async def remote_main(
    app: QApplication,
    url: str,
    token: str,
    config: DesktopConfig,
    data_dir: Path,
    keep: RemoteTokens | None = None,
    fingerprint: str | None = None,
    saved: bool = False,
) -> int:
    """The window on the balancer at `url`: checked first (a wrong token or a refused
    connection is one readable message), the token (and https pin) kept in `keep` once it
    worked. A server `saved` in Settings that fails offers this computer instead: launched
    from a menu, the user has no other way back."""
    setup_logging(None)  # nothing of this computer's data folder is used
    try:
        await check_server(url, token, fingerprint)
    except ApiError as exc:
        print(f"llmlb: {exc.message}", file=sys.stderr, flush=True)
        if saved:
            return await _offer_this_computer(exc.message, config)
        QMessageBox.critical(None, tr("llmlb cannot connect"), exc.message)
        return 2
    if in_clear(url):
        print(f"llmlb: {clear_warning()}", file=sys.stderr, flush=True)
    if keep is not None:
        keep.set(url, token)
        if fingerprint:
            keep.set_pin(url, fingerprint)
    shutdown = asyncio.Event()
    desktop = Desktop(
        app, url, token, config, str(data_dir), shutdown.set, tls_fingerprint=fingerprint,
        remote=True,
    )  # fmt: skip
    return await run_window(
        app, desktop, shutdown, f"llmlb {__version__}: managing the balancer at {url}"
    )


async def _offer_this_computer(reason: str, config: DesktopConfig) -> int:
    """Say why the saved server cannot be managed; SWITCH to this computer if the user asks."""
    box = QMessageBox(QMessageBox.Icon.Warning, tr("llmlb cannot connect"), reason)
    box.setInformativeText(tr("Run llmlb on this computer instead? Settings → Server connects "
                              "to a server again."))  # fmt: skip
    local = box.addButton(tr("Use this computer"), QMessageBox.ButtonRole.AcceptRole)
    box.addButton(tr("Quit"), QMessageBox.ButtonRole.RejectRole)
    answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(code: int) -> None:
        if not answered.done():
            answered.set_result(code)

    box.finished.connect(finished)
    box.open()  # not exec(): the loop keeps running while it is shown
    await answered
    if box.clickedButton() is not local:
        return 2
    config.server_url = ""
    config.save()
    return SWITCH


def run_remote(
    app: QApplication,
    server: str,
    given: tuple[str | None, str | None],
    config: DesktopConfig,
    data_dir: Path,
) -> int:
    """`llmlb --connect URL [--token T] [--fingerprint HEX]`, or the server saved in Settings:
    the token and pin from the command line, else those kept in the OS keyring."""
    token, fingerprint = given[0], pinned(given[1])
    url = normalize_url(server)  # the caller found no window on it already
    tokens = RemoteTokens(DesktopConfig.path().parent)
    known = token or tokens.get(url)
    pin = fingerprint or tokens.pin(url)
    saved = bool(config.server_url) and normalize_url(config.server_url) == url
    if not known and saved:  # the keyring lost it: the server refuses, the box offers a way
        known = ""
    elif not known:
        raise StartupError(
            f"no admin token is kept for {url}: give it once with --token, and it is kept in "
            f"{tokens.vault.where} (it is in the file {TOKEN_FILE} in that server's data folder)"
        )
    keep = tokens if token or fingerprint else None  # what is given now is kept once it worked
    main = remote_main(app, url, known, config, data_dir, keep, pin, saved)
    return int(qasync.run(main))


def _headless_token(data_dir: Path) -> str | None:
    """The admin token a headless `llmlb serve` on `data_dir` takes (same user: same files)."""
    env = os.environ.get("LLMLB_ADMIN_TOKEN", "").strip()
    if env:
        return env
    try:
        return (data_dir / TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _headless_url(data_dir: Path) -> str | None:
    """Where the balancer holding `data_dir` listens, as this machine reaches it."""
    port = running_instance(data_dir).get("port")
    return None if port is None else f"http://127.0.0.1:{port}"


async def folder_in_use(app: QApplication, data_dir: Path, config: DesktopConfig) -> int | None:
    """A window started while another llmlb holds `data_dir`: show that one's window, or
    manage the headless `llmlb serve` that holds it; None when neither can be done (the
    caller shows why the folder is taken)."""
    url = _headless_url(data_dir)
    if url is not None and hand_over_to_window_on(url):  # a window already manages that serve
        return 0
    # Launched twice at once: the other window holds the folder and is about to listen.
    if hand_over_to_running(data_dir, wait=3.0):
        return 0
    return await manage_headless(app, data_dir, config)


async def manage_headless(app: QApplication, data_dir: Path, config: DesktopConfig) -> int | None:
    """The window on the headless `llmlb serve` that holds `data_dir`, as with --connect
    (None when it cannot be reached: TLS, another address, another token)."""
    url = _headless_url(data_dir)
    token = _headless_token(data_dir)
    if url is None or token is None:
        return None
    try:
        await check_server(url, token)
    except ApiError as exc:
        log.info("cannot manage the balancer running on %s: %s", data_dir, exc.message)
        return None
    print(
        f"llmlb: `llmlb serve` already runs on the data folder {data_dir} "
        f"({describe(running_instance(data_dir))}); this window manages it",
        file=sys.stderr,
        flush=True,
    )
    return await remote_main(app, url, token, config, data_dir)
