"""One app per data folder, the paused strip, and Settings' port and Restart now."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import main as entry
from app.core.desktop_config import DesktopConfig
from app.ui.instance import hand_over
from tests.conftest import balancer_settings
from tests.test_main import free_port, wait_until_serving
from tests.ui.conftest import App, qt_app


def test_a_second_launch_on_the_same_data_dir_shows_the_first_window(
    gui: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = gui.desktop.window
    window.hide()  # closed to the tray
    data_dir = gui.ctx.settings.data_dir
    assert os.environ.get("QT_QPA_PLATFORM")  # main() sees a display: the GUI path
    code = entry.main(["--data-dir", str(data_dir / ".." / data_dir.name), "--port", "1"])
    assert code == 0
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("llmlb:")]
    assert f"already running on the data folder {data_dir.resolve()}" in line
    assert f"pid {os.getpid()}, port {gui.ctx.port}" in line and "showed its window" in line
    gui.wait(window.isVisible)
    # No second balancer was started, and nothing answers for another folder.
    assert not hand_over(tmp_path / "another-folder")


def test_a_launch_that_loses_the_race_for_the_folder_hands_over_too(
    gui: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two launches at once: neither found the other listening, this one lost the data-dir lock.
    from PySide6.QtWidgets import QMessageBox

    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a: errors.append(str(a[2])))
    window = gui.desktop.window
    window.hide()
    settings = balancer_settings(gui.ctx.settings.data_dir)
    # The app sets up logging on this test's captured stderr: put the handlers back after, or
    # later tests' log lines go to a closed stream ("--- Logging error ---").
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert gui.run(entry._gui_main(qt_app(), settings, DesktopConfig())) == 0
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    assert errors == []
    assert "showed its window" in capsys.readouterr().err
    gui.wait(window.isVisible)


def test_paused_serving_shows_a_strip_with_resume(gui: App) -> None:
    window = gui.desktop.window
    strip = window.paused
    assert not strip.isVisibleTo(window)
    gui.desktop.tray.pause_action.trigger()
    gui.wait(lambda: strip.isVisibleTo(window))
    assert "Serving is paused" in strip.label.text()
    assert strip.action is not None and strip.action.text() == "Resume"
    gui.screenshot(window, "serving-paused")
    strip.action.click()
    gui.wait(lambda: not strip.isVisibleTo(window))
    assert gui.ctx.balancer is not None and not gui.ctx.balancer.paused


def test_settings_show_the_port_in_use_and_restart_now(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Settings")
    page = window.settings
    saved = DesktopConfig().port
    assert gui.ctx.port != saved  # the test balancer runs on its own port, as with --port
    assert page.port.value() == gui.ctx.port
    assert f"saved: {saved}" in page.port_note.text()
    assert not page.restart_button.isVisibleTo(page)
    page.idle.setValue(5)
    page.lan.setChecked(True)
    page.save_button.click()
    assert page.result.text() == (
        "Saved. Restart llmlb to apply: Serve on the LAN, Unload idle models after"
    )
    assert DesktopConfig.load().port == saved  # the run's port is not saved unasked
    assert page.restart_button.isVisibleTo(page)
    gui.screenshot(window, "settings-restart")
    page.restart_button.click()
    assert gui.desktop.restart_requested and gui.quit_requested == [True]


def test_restart_runs_the_same_command_line_again(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["/usr/bin/python3", "-m", "app", "--port", "41000", "--data-dir", "/d"]
    monkeypatch.setattr(sys, "orig_argv", argv)
    ran: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, args: ran.append((path, list(args))))
    assert entry._after_gui(0) == 0 and ran == []  # a plain quit
    assert entry._after_gui(entry.RESTART) == 0
    assert ran == [(sys.executable, [sys.executable, *argv[1:]])]


@pytest.mark.slow
def test_a_second_app_process_on_the_same_data_dir_hands_over_and_exits(tmp_path: Path) -> None:
    port, other = free_port(), free_port()
    data = tmp_path / "d"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LLMLB_CONFIG_DIR": str(tmp_path / "c")}
    first = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--data-dir", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(first, port)
        second = subprocess.run(
            [sys.executable, "-m", "app", "--port", str(other), "--data-dir", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0, second.stderr
        assert "Traceback" not in second.stderr
        lines = [x for x in second.stderr.splitlines() if x.startswith("llmlb")]
        assert lines == [
            f"llmlb: already running on the data folder {data.resolve()} "
            f"(pid {first.pid}, port {port}); showed its window"
        ]
        with socket.socket() as probe:  # the second never listened
            assert probe.connect_ex(("127.0.0.1", other)) != 0
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=15)
    finally:
        first.kill()
    assert first.returncode == 0, err
