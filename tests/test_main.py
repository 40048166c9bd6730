"""The command line as a user runs it: real `llmlb` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from app import __version__
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.slow


def llmlb(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(proc: subprocess.Popen[str], port: int, timeout: float = 20) -> None:

    def serving() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"llmlb exited early: {proc.communicate()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return True
        except OSError:
            return False

    eventually_sync(serving, timeout=timeout, interval=0.1)


def start_serving(
    command: list[str],
    port: int,
    env: dict[str, str],
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[str]:
    """`command` (an llmlb that serves on `port`) started and waited for until it answers, its
    stderr kept for the test (`preexec_fn` runs in the child before it starts: limits for it);
    killed if it never answers."""
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )
    try:
        wait_until_serving(proc, port)
    except BaseException:
        proc.kill()
        raise
    return proc


def test_version() -> None:
    out = subprocess.run(llmlb("--version"), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"llmlb {__version__}"


def test_self_test_prints_ok() -> None:
    out = subprocess.run(llmlb("--self-test"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_until_a_signal_then_exits_cleanly(tmp_path: Path, sig: int) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        llmlb("serve", "--port", str(port), "--data-dir", str(data)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        wait_until_serving(proc, port)
        # Started as a user sees it: the endpoint line (the admin token is printed before it).
        eventually_sync(lambda: any("OpenAI endpoint" in line for line in lines), timeout=30)
        token = (data / "admin_token").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v0/models/register",
            method="POST",
            data=json.dumps({"model_id": "qwen3"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 201
        proc.send_signal(sig)
        proc.wait(timeout=15)
    finally:
        proc.kill()
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"http://127.0.0.1:{port}/v1" in err
    assert token in err  # the new admin token is printed once
    # The database was closed: the WAL was checkpointed into the main file.
    wal = data / "llmlb.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(data / "llmlb.db") as conn:
        assert conn.execute("SELECT name FROM models").fetchall() == [("qwen3",)]


TOKEN = "env-admin-token-for-tests"


def test_a_weak_admin_token_is_refused_at_start(tmp_path: Path) -> None:
    env = {**os.environ, "LLMLB_DATA_DIR": str(tmp_path / "d"), "LLMLB_ADMIN_TOKEN": "admin"}
    done = subprocess.run(
        llmlb("serve", "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "LLMLB_ADMIN_TOKEN is too weak" in done.stderr
    assert "Traceback" not in done.stderr


def test_data_dir_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LLMLB_DATA_DIR": str(tmp_path / "envdata"), "LLMLB_ADMIN_TOKEN": TOKEN}
    proc = subprocess.Popen(
        llmlb("serve", "--port", str(port)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(proc, port)
        assert (tmp_path / "envdata" / "llmlb.db").exists()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v0/models", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.loads(r.read()) == []
        proc.terminate()
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0


def run_failing(args: list[str]) -> str:
    out = subprocess.run(llmlb(*args), capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("llmlb:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = run_failing(["serve", "--port", str(port), "--data-dir", str(tmp_path / "d")])
    assert f"port {port}" in line and "already in use" in line


def test_an_unwritable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = run_failing(["serve", "--port", str(free_port()), "--data-dir", str(blocker / "sub")])
    assert "cannot write to the data dir" in line


def test_a_corrupt_database_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "llmlb.db").write_bytes(b"garbage" * 1000)
    line = run_failing(["serve", "--port", str(free_port()), "--data-dir", str(data)])
    assert "unreadable" in line and "llmlb.db" in line
    assert (data / "llmlb.db").read_bytes() == b"garbage" * 1000  # left for the user to rescue


def test_headless_mode_never_imports_qt(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys, app.main, app.context\n"
        "from app.core.settings import Settings\n"
        "async def go():\n"
        "    data = __import__('pathlib').Path(sys.argv[1])\n"
        "    ctx = app.context.AppContext(Settings(data_dir=data, port=0, local_node=False))\n"
        "    await ctx.start(); await ctx.stop()\n"
        "asyncio.run(go())\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'qasync', 'shiboken'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], check=True, timeout=60)


def test_node_help_names_the_nodes_own_defaults() -> None:
    out = subprocess.run(llmlb("node", "--help"), capture_output=True, text=True, check=True)
    help_text = " ".join(out.stdout.split())
    assert "port the node listens on (default 32769)" in help_text
    assert "address the node listens on (default 0.0.0.0)" in help_text


def test_a_node_without_the_join_token_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMLB_JOIN_TOKEN"}
    out = subprocess.run(
        llmlb("node", "--data-dir", str(tmp_path / "d"), "--balancer", "http://127.0.0.1:1"),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "a node needs the cluster join token" in out.stderr
    assert not (tmp_path / "d").exists()  # refused before it touched the disk


def test_a_node_on_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = run_failing(
            [
                "node",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "d"),
                "--join-token",
                "llmlb-join-a-token-for-this-test",
                "--balancer",
                "http://127.0.0.1:1",
            ]
        )
    assert f"the node cannot listen on 127.0.0.1:{port}" in line


def node_until_sigterm(
    data: Path, args: list[str], env: dict[str, str], phrase: str
) -> tuple[str, str, int]:
    """`llmlb node` on loopback with `args`: read its log until `phrase`, send SIGTERM, and
    return (the log so far, the rest of it, the exit code)."""
    proc = subprocess.Popen(
        llmlb("node", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data), *args),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen = ""
        while phrase not in seen:
            line = proc.stderr.readline()
            assert line, f"llmlb node exited early: {seen}"
            seen += line
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    return seen, err, proc.returncode


def test_a_node_still_looking_for_its_balancer_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "LLMLB_MDNS_INTERFACES": "127.0.0.1"}  # multicast stays on loopback
    seen, err, code = node_until_sigterm(
        tmp_path / "d",
        ["--join-token", "llmlb-join-nobody-on-this-lan-knows-it"],
        env,
        "looking for a balancer on the LAN",
    )
    assert code == 0, err
    assert "Traceback" not in seen + err
    assert "serving at" not in err  # it never started serving


def test_a_node_takes_its_join_token_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "LLMLB_JOIN_TOKEN": "llmlb-join-a-token-from-the-environment"}
    seen, err, code = node_until_sigterm(
        tmp_path / "d", ["--balancer", "http://127.0.0.1:1"], env, "serving at"
    )
    assert "balancer http://127.0.0.1:1" in seen
    assert code == 0, err
    assert "Traceback" not in seen + err


def test_a_second_serve_on_the_same_data_dir_is_refused_and_registers_no_node(
    tmp_path: Path,
) -> None:
    port, other = free_port(), free_port()
    data = tmp_path / "data"
    first = subprocess.Popen(
        llmlb("serve", "--port", str(port), "--data-dir", str(data)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(first, port)
        token = (data / "admin_token").read_text().strip()

        def nodes() -> list[dict[str, object]]:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v0/nodes", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(req, timeout=5) as r:
                return list(json.loads(r.read()))

        eventually_sync(lambda: len(nodes()) == 1, timeout=20)
        [local] = nodes()
        # The same folder by another spelling: the lock keys on the resolved path.
        same = tmp_path / "x" / ".." / "data"
        (tmp_path / "x").mkdir()
        line = run_failing(["serve", "--port", str(other), "--data-dir", str(same)])
        assert "already running on the data folder" in line
        assert f"pid {first.pid}" in line and f"port {port}" in line
        # The second never listened, and the first still has its one local node, same id.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", other)) != 0
        assert [n["id"] for n in nodes()] == [local["id"]]
        # Nor can a node process on that folder take the local node's identity.
        balancer = f"http://127.0.0.1:{port}"
        node = ["node", "--data-dir", str(data), "--port", str(other), "--balancer", balancer]
        line = run_failing([*node, "--join-token", "a" * 32])
        assert "already running on the data folder" in line and f"pid {first.pid}" in line
        assert [n["id"] for n in nodes()] == [local["id"]]
        first.terminate()
        first.communicate(timeout=15)
    finally:
        first.kill()
    assert first.returncode == 0
    # Once the first has stopped, the folder is free again.
    again = subprocess.Popen(
        llmlb("serve", "--port", str(other), "--data-dir", str(data), "--no-local-node"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(again, other)
        again.terminate()
        again.communicate(timeout=15)
    finally:
        again.kill()
