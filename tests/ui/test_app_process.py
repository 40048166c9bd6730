"""`llmlb` as a user starts it: the window, the balancer and the node in one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_main import free_port, wait_until_serving

pytestmark = pytest.mark.slow


def test_the_desktop_app_serves_and_quits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "LLMLB_CONFIG_DIR": str(tmp_path / "config"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(proc, port)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert took < 6, f"quitting took {took:.1f} s"  # the bound: within 5 s
    assert (tmp_path / "d" / "llmlb.db").exists()


def test_without_a_display_llmlb_serves_headless(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(proc, port)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "no display found; serving headless" in err
