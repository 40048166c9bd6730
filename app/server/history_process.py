"""The request history's writer process: both ends of the pipe between the balancer and it.

Writing the history in the balancer's own database thread cost the event loop ~15 µs a request
under load (bench/proxy.py, c=64): SQLite releases the GIL while it works, but binding each
row's values, cutting the bodies and assembling streams hold it, and every hand-over of the GIL
between the two threads stalls the loop. A child process has a GIL of its own: the loop only
pickles each batch (~0.5 µs a row) and writes it to a socket; the child cuts the bodies,
assembles streams, writes the rows into the same SQLite file (WAL: the two processes write in
turn, each transaction taking the write lock at BEGIN IMMEDIATE) and acknowledges each batch
once committed. Where the child cannot start or dies, the history is written in this process
from then on, as before (`RequestHistory` falls back); a batch the child fails to write is
written here too. So nothing recorded is lost (a child killed between its commit and its
answer leaves that one batch written twice).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from app.core.wire import HistoryRow
from app.db.request_store import write_batch
from app.server.bodies import Capture, stored

log = logging.getLogger(__name__)
WRITER_ENV = "LLMLB_HISTORY_WRITER"  # in the child's environment: "<socket fd> <database path>"
_FRAME = struct.Struct("!I")  # a batch's length, then its pickle
_ACK = struct.Struct("!QI")  # the batch's number and the length of the error that follows
MAX_ERROR = 1000  # bytes of a failed write's message sent back
_PACKAGES = Path(__file__).resolve().parents[2]  # where `app` is imported from (-m below)
_STOP_TIMEOUT = 10.0  # seconds the child has to finish its last batch at stop

# What travels for one request's bodies: the client's body, a whole answer, a stream's bytes.
_Parts = tuple[bytes | None, bytes | None, bytes | None] | None


class WriterGone(Exception):
    """The writer process stopped before it acknowledged a batch."""


def _parts(capture: Capture | None) -> _Parts:
    if capture is None:
        return None
    stream = None if capture.parts is None else b"".join(capture.parts)
    return capture.request, capture.response, stream


class WriterProcess:
    """The parent's end: starts the child, hands it batches, waits for each to be written."""

    def __init__(self, database: Path) -> None:
        self.database = Path(os.path.abspath(database))  # the child runs in another directory
        self._process: subprocess.Popen[bytes] | None = None
        self._transport: asyncio.Transport | None = None
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._sent = 0

    @property
    def alive(self) -> bool:
        """Whether batches go to the child now."""
        return self._transport is not None

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None and self.alive else None

    async def start(self) -> bool:
        """Start the child; False (and a warning logged) where it cannot run."""
        if os.name != "posix":  # the descriptor is passed as on POSIX systems only
            return False
        parent, child = socket.socketpair()

        def spawn() -> subprocess.Popen[bytes]:  # a fork and an exec: off the loop
            try:
                return subprocess.Popen(
                    _command(),
                    env={**os.environ, WRITER_ENV: f"{child.fileno()} {self.database}"},
                    pass_fds=(child.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    cwd=None if getattr(sys, "frozen", False) else _PACKAGES,
                )
            finally:
                child.close()  # the child's copy is its own

        try:
            self._process = await asyncio.to_thread(spawn)
        except OSError as exc:
            parent.close()
            log.warning("the request history's writer process did not start (%s)", exc)
            return False
        except BaseException:  # cancelled: a child started all the same reads its end closed
            parent.close()
            raise
        loop = asyncio.get_running_loop()
        try:
            self._transport, _ = await loop.create_unix_connection(lambda: _Acks(self), sock=parent)
        except OSError as exc:
            parent.close()
            log.warning("the request history's writer process is not reachable (%s)", exc)
            await self.close()
            return False
        return True

    async def write(
        self,
        rows: list[HistoryRow],
        captures: list[Capture | None],
        keep_seconds: float,
        prune: bool,
    ) -> bool:
        """Write a batch in the child: True once committed; False when it was not (no child,
        it stopped, or it failed to write and said why, which is logged): the caller writes
        the batch itself."""
        transport = self._transport
        if transport is None:
            return False
        self._sent += 1
        number = self._sent
        payload = pickle.dumps(
            (number, keep_seconds, prune, rows, [_parts(c) for c in captures]), protocol=5
        )
        answered = asyncio.get_running_loop().create_future()
        self._waiting[number] = answered
        transport.writelines((_FRAME.pack(len(payload)), payload))
        try:
            error = await answered
        except WriterGone:
            return False
        if error:
            log.warning("the request history's writer process could not write: %s", error)
            return False
        return True

    async def close(self) -> None:
        """Let the child finish what it was sent, and wait for it to exit (killed if it does not
        within _STOP_TIMEOUT seconds)."""
        transport, process = self._transport, self._process
        self._transport = None
        if transport is not None:
            transport.close()  # what is buffered is sent first; then the child reads its end
        if process is None:
            return
        try:
            await asyncio.to_thread(process.wait, _STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("the request history's writer did not stop; killed")
            process.kill()
            await asyncio.to_thread(process.wait)

    def _acknowledged(self, number: int, error: str) -> bool:
        answered = self._waiting.pop(number, None)
        if answered is None:
            return False
        if not answered.done():
            answered.set_result(error)
        return True

    def _lost(self) -> None:
        if self._transport is not None:
            code = None if self._process is None else self._process.poll()
            log.warning(
                "the request history's writer process stopped (exit code %s); the history is "
                "written in this process from now on",
                code,
            )
        self._transport = None
        waiting, self._waiting = self._waiting, {}
        for answered in waiting.values():
            if not answered.done():
                answered.set_exception(WriterGone())


class _Acks(asyncio.Protocol):
    """Reads the child's acknowledgements (a fixed frame each: what a child sends is checked
    like any input, never unpickled)."""

    def __init__(self, writer: WriterProcess) -> None:
        self.writer = writer
        self.buffer = bytearray()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= _ACK.size:
            number, length = _ACK.unpack_from(self.buffer)
            if length > MAX_ERROR:
                self._broken(f"an error of {length} bytes")
                return
            if len(self.buffer) < _ACK.size + length:
                return
            error = bytes(self.buffer[_ACK.size : _ACK.size + length]).decode("utf-8", "replace")
            del self.buffer[: _ACK.size + length]
            if not self.writer._acknowledged(number, error):
                self._broken(f"an answer to batch {number}, which it was not sent")
                return

    def _broken(self, what: str) -> None:
        log.error("the request history's writer process sent %s; it is stopped", what)
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer._lost()


def _command() -> list[str]:
    """How to start the child: the bundle's own executable (its entry point reads WRITER_ENV),
    or this interpreter running this module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", __name__]


# -- the child ----------------------------------------------------------------------------
def serve(fd: int, database: str) -> None:
    """The child's work: write each batch read from socket `fd` until the parent closes it."""
    # Ctrl+C in a terminal and a service manager's SIGTERM reach the whole process group: the
    # child stays until the parent has handed over its last batch and closed the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channel = socket.socket(fileno=fd)
    # mode=rw: the balancer made the file; a path that names none is an error, never a new
    # empty database that every batch would then fail to write into.
    connection = sqlite3.connect(
        f"file:{urllib.parse.quote(database)}?mode=rw", uri=True, timeout=30, isolation_level=None
    )
    connection.execute("PRAGMA synchronous = NORMAL")  # records: see Database.transaction
    incoming = channel.makefile("rb")
    answering = True
    try:
        while True:
            try:
                head = incoming.read(_FRAME.size)
                (size,) = _FRAME.unpack(head)  # a short read: the parent closed its end
                payload = incoming.read(size)
            except (OSError, struct.error):
                return  # every batch it finished sending was written
            if len(payload) < size:
                return
            number, keep_seconds, prune, rows, parts = pickle.loads(payload)  # our parent's
            error = _write(connection, rows, parts, keep_seconds, prune)
            if answering:
                try:
                    channel.sendall(_ACK.pack(number, len(error)) + error)
                except OSError:  # the parent is gone (killed): what it sent is still written
                    answering = False
    finally:
        connection.close()
        channel.close()


def _write(
    connection: sqlite3.Connection,
    rows: list[HistoryRow],
    parts: list[_Parts],
    keep_seconds: float,
    prune: bool,
) -> bytes:
    """Write one batch in one transaction: b"" once committed, else the error's text."""
    try:
        texts = [
            None if p is None else stored(_capture(p), row["status"], row["error"])
            for row, p in zip(rows, parts, strict=True)
        ]
        connection.execute("BEGIN IMMEDIATE")
        try:
            write_batch(connection, rows, texts, keep_seconds, prune)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    except Exception as exc:
        return repr(exc).encode("utf-8", "replace")[:MAX_ERROR]
    return b""


def _capture(parts: Any) -> Capture:
    capture = Capture()
    capture.request, capture.response, stream = parts
    if stream is not None:
        capture.parts = [stream]
    return capture


def main() -> None:
    """Run as the child (the environment says which socket and database)."""
    fd, _, database = os.environ[WRITER_ENV].partition(" ")
    serve(int(fd), database)


if __name__ == "__main__":
    main()
