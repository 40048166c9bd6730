"""The request history's writer process: a real balancer's history written by its own child
process; nothing lost when that process dies, cannot start, or answers nonsense; and at stop the
last batch written before the child exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from app.core.tasks import TaskSupervisor
from app.db.request_store import RequestStore
from app.db.store import Store
from app.server.bodies import Capture
from app.server.history import RequestHistory
from app.server.history_process import WriterProcess, _Acks
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.support.waiting import eventually

CHAT = "/v1/chat/completions"


async def ask_absent(b: RunningBalancer, n: int) -> None:
    """`n` chats for models that do not exist: each answered 404, each recorded."""
    for i in range(n):
        body = {"model": f"absent-{i}", "messages": [{"role": "user", "content": f"hi {i}"}]}
        async with b.http.post(b.url + CHAT, json=body) as r:
            assert r.status == 404


def writer_of(b: RunningBalancer) -> WriterProcess:
    assert b.ctx.balancer is not None
    writer = b.ctx.balancer.history.writer
    assert writer is not None
    return writer


def opened_files(pid: int) -> set[str]:
    """What process `pid` has open (Linux's /proc)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return found


async def test_the_history_is_written_by_its_own_process(balancer: RunningBalancer) -> None:
    writer = writer_of(balancer)
    pid = await eventually(lambda: writer.pid)
    assert pid != os.getpid()
    await ask_absent(balancer, 3)
    status, rows = await balancer.get("/v0/requests")
    assert status == 200
    assert sorted(r["model"] for r in rows) == ["absent-0", "absent-1", "absent-2"]
    status, detail = await balancer.get(f"/v0/requests/{rows[0]['id']}")
    assert status == 200
    assert '"hi 2"' in detail["request_body"] and "model_not_found" in detail["response_body"]
    assert balancer.ctx.store is not None
    assert writer.alive  # every batch went to the child, which has the history's file open
    assert str(balancer.ctx.store.db.path) in opened_files(pid)


async def test_a_writer_killed_mid_run_loses_no_request(balancer: RunningBalancer) -> None:
    writer = writer_of(balancer)
    pid = await eventually(lambda: writer.pid)
    await ask_absent(balancer, 2)
    os.kill(pid, signal.SIGKILL)  # with two requests not yet written
    await ask_absent(balancer, 2)
    status, rows = await balancer.get("/v0/requests")
    assert status == 200 and len(rows) == 4
    await eventually(lambda: not writer.alive)
    await ask_absent(balancer, 1)  # written in the balancer's own process from now on
    status, rows = await balancer.get("/v0/requests")
    assert status == 200 and len(rows) == 5


async def test_at_stop_the_last_requests_are_written_and_the_writer_exits(
    tmp_path: Path,
) -> None:
    async with run_balancer(balancer_settings(tmp_path / "data")) as b:
        writer = writer_of(b)
        pid = await eventually(lambda: writer.pid)
        await ask_absent(b, 3)  # not flushed: the stop writes them
        assert b.ctx.store is not None
        database = b.ctx.store.db.path
    with pytest.raises(ProcessLookupError):  # exited, and reaped
        os.kill(pid, 0)
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM requests").fetchone()
        (bodies,) = connection.execute("SELECT COUNT(*) FROM request_bodies").fetchone()
    assert count == 3 and bodies == 3


def record(history: RequestHistory, model: str) -> None:
    capture = Capture()
    capture.keep_request(b'{"model": "%s"}' % model.encode())
    history.record(CHAT, model, None, 404, False, time.perf_counter(), None, "no such model",
                   known_model=False, bodies=capture)  # fmt: skip


async def test_a_writer_that_cannot_open_the_file_leaves_the_history_here(
    store: Store, tmp_path: Path
) -> None:
    writer = WriterProcess(tmp_path / "no such directory" / "llmlb.db")
    history = RequestHistory(RequestStore(store), TaskSupervisor("t"), writer=writer)
    assert await writer.start()  # it starts, then fails to open the database and exits
    record(history, "first")
    await history.flush()  # whether or not the child was gone yet: written here
    await eventually(lambda: not writer.alive)
    record(history, "second")
    await history.flush()
    rows = await RequestStore(store).recent(10)
    assert [r["model"] for r in rows] == ["second", "first"]
    await writer.close()


async def test_a_relative_database_path_is_the_same_file_for_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the child runs elsewhere: it gets the path made absolute
    store = Store(Path("relative.db"))
    await store.open()
    writer = WriterProcess(Path("relative.db"))
    history = RequestHistory(RequestStore(store), TaskSupervisor("t"), writer=writer)
    try:
        assert await writer.start()
        record(history, "here")
        await history.flush()
        assert writer.alive  # it wrote the batch (a child that opened nothing would be gone)
        assert [r["model"] for r in await RequestStore(store).recent(10)] == ["here"]
    finally:
        await writer.close()
        await store.close()


async def fake_child(store: Store) -> tuple[WriterProcess, socket.socket]:
    """A writer whose child is a socket this test answers through (a child sending nonsense)."""
    writer = WriterProcess(store.db.path)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    writer._transport, _ = await loop.create_unix_connection(lambda: _Acks(writer), sock=ours)
    return writer, theirs


async def test_a_writer_answering_a_batch_it_was_not_sent_is_cut_off(store: Store) -> None:
    """What the child sends back is read as hostile input: a made-up acknowledgement ends the
    connection, and the batch waiting for its answer is written in this process instead."""
    writer, theirs = await fake_child(store)
    history = RequestHistory(RequestStore(store), TaskSupervisor("t"), writer=writer)
    record(history, "kept")
    loop = asyncio.get_running_loop()
    flushed = asyncio.ensure_future(history.flush())
    await loop.sock_recv(theirs, 4)  # the batch is on its way
    await loop.sock_sendall(theirs, (99).to_bytes(8, "big") + (0).to_bytes(4, "big"))
    await flushed
    assert not writer.alive
    assert [r["model"] for r in await RequestStore(store).recent(10)] == ["kept"]
    theirs.close()


async def test_a_batch_the_writer_failed_to_write_is_written_here(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    writer, theirs = await fake_child(store)
    history = RequestHistory(RequestStore(store), TaskSupervisor("t"), writer=writer)
    record(history, "kept")
    loop = asyncio.get_running_loop()
    flushed = asyncio.ensure_future(history.flush())
    await loop.sock_recv(theirs, 4)
    why = b"OperationalError('disk I/O error')"
    await loop.sock_sendall(theirs, (1).to_bytes(8, "big") + len(why).to_bytes(4, "big") + why)
    await flushed
    assert [r["model"] for r in await RequestStore(store).recent(10)] == ["kept"]
    assert "could not write: OperationalError('disk I/O error')" in caplog.text
    assert writer.alive  # a failed write is not a broken child
    theirs.close()
