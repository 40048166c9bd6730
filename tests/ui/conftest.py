"""GUI fixtures: a qasync loop shared by Qt and the embedded balancer, and the whole app."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QEvent, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.context import AppContext
from app.core.desktop_config import DesktopConfig
from app.core.system import Machine
from app.ui.desktop import Desktop
from tests.conftest import balancer_settings
from tests.support.waiting import eventually

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def qt_app() -> QApplication:
    """The QApplication pytest-qt made (typed: `QApplication.instance()` is a QCoreApplication)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return app


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """A qasync loop that counts as running for the whole test, as in the app, where it runs
    from start to quit. The tests pump Qt events themselves (App.run), so pytest-qt's own
    processEvents() calls between phases also find the loop they expect."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    tick = QTimer()  # wakes WaitForMoreEvents now and then
    tick.start(50)
    try:
        yield loop
    finally:
        tick.stop()
        loop.stop()
        loop.close()
        asyncio.set_event_loop(None)
        # qasync marks an `already_running` loop as the running one and never unmarks it: left
        # so, every later asyncio.run() in this process (the server and node tests) would fail
        # with "Cannot run the event loop while another loop is running".
        asyncio.events._set_running_loop(None)


@dataclass
class App:
    """The running desktop app, with helpers to drive its loop."""

    loop: qasync.QEventLoop
    ctx: AppContext
    desktop: Desktop
    quit_requested: list[bool]
    shots: Path = Path(tempfile.gettempdir()) / "llmlb-screenshots"

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the app's loop, pumping Qt events until it is done."""
        future = asyncio.ensure_future(coro, loop=self.loop)
        flags = (
            QEventLoop.ProcessEventsFlag.AllEvents | QEventLoop.ProcessEventsFlag.WaitForMoreEvents
        )
        while not future.done():
            QApplication.processEvents(flags)
        return future.result()

    def wait(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Let the app run until `predicate()` is truthy (`eventually`, with Qt events pumped)."""
        return self.run(eventually(predicate, timeout=timeout, interval=0.03))

    def screenshot(self, widget: Any, name: str) -> Path:
        """Grab `widget` as <name>.png: into docs/screenshots/ with LLMLB_SCREENSHOTS=1
        (`make screenshots`), else into a temp folder, so test runs leave the tree clean."""
        folder = SCREENSHOTS if os.environ.get("LLMLB_SCREENSHOTS") else self.shots
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"

        async def grab() -> None:
            assert widget.grab().save(str(path))

        self.run(grab())
        return path

    @contextmanager
    def restarted(self) -> Iterator[Desktop]:
        """A second desktop on the same running balancer, as after the app restarted; closed
        at the end."""
        again = Desktop(
            qt_app(),
            self.ctx.base_url,
            self.ctx.admin_token,
            DesktopConfig(),
            "/tmp",
            lambda: None,
            MACHINE,
        )
        try:
            again.start()
            yield again
        finally:
            self.run(again.close())

    def settle(self, seconds: float = 0.2) -> None:
        """Let events flow for a moment."""
        self.run(asyncio.sleep(seconds))


MACHINE = Machine(ram_bytes=16 * 10**9, available_bytes=12 * 10**9)


@pytest.fixture
def gui(
    qloop: qasync.QEventLoop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_hub: Any,
    request: pytest.FixtureRequest,
) -> Iterator[App]:
    """The desktop app on a real embedded balancer with its local node (parametrized
    indirectly with False: without one, for a test that registers its nodes itself; with a
    dict: those balancer settings)."""
    monkeypatch.setenv("LLMLB_CONFIG_DIR", str(tmp_path / "config"))
    param = getattr(request, "param", True)
    # A bool: with or without the local node; a dict: the balancer's settings (slots=1…).
    overrides = param if isinstance(param, dict) else {"local_node": param}
    settings = balancer_settings(
        tmp_path / "data", **({"local_node": True, "context_size": 4096} | overrides)
    )
    ctx = AppContext(settings)
    App(qloop, ctx, None, []).run(ctx.start())  # type: ignore[arg-type]
    quit_requested: list[bool] = []
    desktop = Desktop(
        qt_app(),
        ctx.base_url,
        ctx.admin_token,
        DesktopConfig(),
        str(settings.data_dir),
        lambda: quit_requested.append(True),
        MACHINE,
    )
    desktop.start()
    app = App(qloop, ctx, desktop, quit_requested)
    app.wait(lambda: desktop.state.hub)
    try:
        yield app
    finally:
        app.run(desktop.close())
        app.run(ctx.stop())
        desktop.window.deleteLater()
        desktop.tray.menu.deleteLater()
        # Deleted now: the loop these tests pump never gets back to the level where Qt runs
        # deferred deletes, so every window stayed alive until the module ended, and each
        # new window's style sheet (app/ui/theme.py) was applied to all of them: minutes a
        # test by the end of tests/ui in one run.
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
