"""The GUI's single instance per data folder (or per remote server): a second launch asks the
first to show itself, over Qt's local socket."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app.core.instance import describe, instance_key, running_instance
from app.core.remote import normalize_url, remote_instance_key

log = logging.getLogger(__name__)
SHOW = b"show\n"
WAIT_MS = 1000


def hand_over_to(name: str) -> bool:
    """Ask the app listening on the socket `name` to show its window; False when none answers."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(WAIT_MS):
        return False
    socket.write(SHOW)
    sent = socket.waitForBytesWritten(WAIT_MS)
    socket.disconnectFromServer()
    return sent


def hand_over(data_dir: Path) -> bool:
    """Ask the app already running on `data_dir` to show its window; False when none answers."""
    return hand_over_to(instance_key(data_dir))


def hand_over_to_running(data_dir: Path, wait: float = 0.0) -> bool:
    """Hand over to the app running on `data_dir` (trying for `wait` seconds) and say so on
    stderr; False when none answers."""
    data_dir = data_dir.expanduser().resolve()
    deadline = time.monotonic() + wait
    while not hand_over(data_dir):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    print(
        f"llmlb: already running on the data folder {data_dir} "
        f"({describe(running_instance(data_dir))}); showed its window",
        file=sys.stderr,
        flush=True,
    )
    return True


def hand_over_to_window_on(url: str) -> bool:
    """Hand over to the window already open on the remote server `url`, saying so on stderr;
    False when none answers."""
    url = normalize_url(url)
    if not hand_over_to(remote_instance_key(url)):
        return False
    print(f"llmlb: a window on {url} is already open; showed it", file=sys.stderr, flush=True)
    return True


def _answers(name: str) -> bool:
    """Whether an app listens on the socket `name` (a connection, nothing asked of it)."""
    probe = QLocalSocket()
    probe.connectToServer(name)
    answered = probe.waitForConnected(WAIT_MS)
    probe.abort()
    return answered


class InstanceServer:
    """Listens for later launches on the same data folder (or server) and shows the window."""

    def __init__(self, name: str, show: Callable[[], None]) -> None:
        self.show = show
        # Owned by the application and deleted by Qt's event loop (close()), never by Python's
        # collector: this object and its signal connections form a cycle, and a collection
        # that ran inside a socket's signal deleted the server under it (a crash, now and then,
        # in the tests' event processing).
        self.server = QLocalServer(QCoreApplication.instance())
        self._closed = False
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        # Qt replaces whatever file bears the name (its user-only socket is renamed over it):
        # a live window's socket must not be taken, a crashed run's file must not be in the way.
        self.listening = False
        if _answers(name):
            log.warning("another window on the same folder or server listens as %s", name)
        else:
            QLocalServer.removeServer(name)
            self.listening = self.server.listen(name)
        if not self.listening:
            log.warning("later launches cannot find this window: %s", self.server.errorString())
        self.server.newConnection.connect(self._accept)

    def _accept(self) -> None:
        while (conn := self.server.nextPendingConnection()) is not None:
            conn.readyRead.connect(lambda c=conn: self._read(c))
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                self._read(conn)

    def _read(self, conn: QLocalSocket) -> None:
        if bytes(conn.readAll().data()).startswith(SHOW.strip()):
            self.show()

    def close(self) -> None:
        """Stop listening (the socket file goes with it); the server and its connections are
        deleted by the event loop."""
        if self._closed:  # quitting closes it, and so may whoever quits afterwards
            return
        self._closed = True
        self.server.close()
        self.server.deleteLater()
