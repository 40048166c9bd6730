"""When the balancer is gone: retry quietly, then say so; and the Japanese UI."""

from __future__ import annotations

import time

import qasync

from app.core.desktop_config import DesktopConfig
from app.ui.desktop import Desktop
from app.ui.i18n import set_language
from tests.test_main import free_port
from tests.ui.conftest import MACHINE, App, qt_app


def test_a_lost_balancer_shows_a_banner_after_quiet_retries(qloop: qasync.QEventLoop) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    desktop = Desktop(qt_app(), dead, "token", DesktopConfig(), "/tmp", lambda: None, MACHINE)
    desktop.state.banner_after = 1.0
    app = App(qloop, None, desktop, [])  # type: ignore[arg-type]
    desktop.start()
    banner = desktop.window.banner
    state = desktop.state

    def lost_for_half_a_second() -> bool:
        lost = state._lost_since
        return lost is not None and time.monotonic() - lost >= 0.5

    app.wait(lost_for_half_a_second, timeout=10)
    assert not banner.isVisibleTo(desktop.window)  # quiet at first: it may come back
    app.wait(lambda: banner.isVisibleTo(desktop.window), timeout=10)
    assert "Lost connection to the balancer" in banner.label.text()
    assert "did not respond" in banner.label.text()
    app.run(desktop.close())


def test_the_japanese_ui(qloop: qasync.QEventLoop) -> None:
    config = DesktopConfig(language="ja")
    desktop = Desktop(
        qt_app(),
        f"http://127.0.0.1:{free_port()}",
        "t",
        config,
        "/tmp",
        lambda: None,
        MACHINE,
    )
    try:
        window = desktop.window
        names = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
        assert names == [
            *("概要", "モデル", "プレイグラウンド", "ノード"),
            *("リクエスト", "ログ", "設定"),
        ]
        assert window.models.tabText(0) == "モデルハブ"
        assert desktop.tray.quit_action.text() == "終了"
    finally:
        set_language("en")
        App(qloop, None, desktop, []).run(desktop.close())  # type: ignore[arg-type]
