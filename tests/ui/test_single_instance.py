"""One window per data folder: a second `llmlb` raises the first (minimised or not, a crashed
run's socket file left behind or not), and a window started while a headless `llmlb serve`
holds the folder manages that serve."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QDir

from app.core.instance import instance_key
from app.ui.instance import InstanceServer, hand_over
from tests.support.waiting import eventually_sync
from tests.test_main import free_port, llmlb
from tests.ui.conftest import App
from tests.ui.test_connect import QUIET_HUB, served


def test_a_second_app_process_raises_the_minimised_window_whatever_its_port(
    gui: App, caplog: pytest.LogCaptureFixture
) -> None:
    window = gui.desktop.window
    window.showMinimized()
    gui.wait(window.isMinimized)
    other = free_port()
    data = gui.ctx.settings.data_dir
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    caplog.set_level(logging.INFO, logger="app.ui.desktop")
    second = subprocess.Popen(
        llmlb("--port", str(other), "--data-dir", str(data)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        gui.wait(lambda: second.poll() is not None, timeout=60)  # Qt answers it meanwhile
        _out, err = second.communicate(timeout=10)
    finally:
        second.kill()
    assert second.returncode == 0, err
    assert "Traceback" not in err and "showed its window" in err
    gui.wait(lambda: window.isVisible() and not window.isMinimized())
    assert "raised the window for a later launch" in caplog.text  # said in the log
    with socket.socket() as probe:  # the second started no balancer
        assert probe.connect_ex(("127.0.0.1", other)) != 0


def test_a_crashed_runs_socket_file_does_not_hide_the_next_app(tmp_path: Path, gui: App) -> None:
    folder = tmp_path / "crashed"
    name = instance_key(folder)
    # What a killed app leaves on Unix: the socket file, bound once, with nobody listening.
    path = Path(QDir.tempPath()) / name
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(path))
    left.close()
    assert path.exists()
    assert not hand_over(folder)  # nobody answers: the launch starts its own app
    shown: list[bool] = []
    server = InstanceServer(name, lambda: shown.append(True))
    try:
        assert server.listening  # the stale file was removed, not in the way
        assert hand_over(folder)
        gui.wait(lambda: shown == [True])
    finally:
        server.close()


def test_a_second_window_never_takes_the_first_ones_socket(tmp_path: Path, gui: App) -> None:
    name = instance_key(tmp_path / "shared")
    shown: list[str] = []
    first = InstanceServer(name, lambda: shown.append("first"))
    second = InstanceServer(name, lambda: shown.append("second"))
    try:
        assert first.listening and not second.listening
        assert hand_over(tmp_path / "shared")
        gui.wait(lambda: shown == ["first"])
    finally:
        second.close()
        first.close()


def _until(proc: subprocess.Popen[str], lines: list[str], text: str) -> None:
    eventually_sync(lambda: proc.poll() is not None or any(text in x for x in lines), timeout=60)
    assert any(text in x for x in lines), "".join(lines)


@pytest.mark.slow
def test_a_window_on_a_folder_held_by_llmlb_serve_manages_that_serve(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **QUIET_HUB,
        "QT_QPA_PLATFORM": "offscreen",
        "LLMLB_CONFIG_DIR": str(tmp_path / "config"),
    }
    with served(tmp_path, local_node=False) as server:
        data = str(server.data)
        window = subprocess.Popen(
            llmlb("--data-dir", data), env=env, stderr=subprocess.PIPE, text=True
        )
        lines: list[str] = []
        assert window.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(iter(window.stderr.readline, "")))
        reader.start()
        try:
            _until(window, lines, f"managing the balancer at {server.url}")
            said = next(x for x in lines if x.startswith("llmlb: "))
            assert said.startswith(f"llmlb: `llmlb serve` already runs on the data folder {data}")
            assert f"pid {server.proc.pid}, port" in said and "this window manages it" in said
            # A third launch on that folder shows the window that manages the serve.
            third = subprocess.run(
                llmlb("--data-dir", data), env=env, capture_output=True, text=True, timeout=60
            )
            assert third.returncode == 0, third.stderr
            assert f"a window on {server.url} is already open; showed it" in third.stderr
            _until(window, lines, "raised the window for a later launch")
            window.send_signal(signal.SIGTERM)
            assert window.wait(timeout=20) == 0
        finally:
            window.kill()
            reader.join(timeout=10)
        assert "Traceback" not in "".join(lines)
