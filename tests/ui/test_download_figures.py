"""A download on the Hub card and the Local row: percent, size, speed and time left while bytes
flow; the reason and a counting-down next try while it waits to retry."""

from __future__ import annotations

import time
from typing import Any, cast

from pytestqt.qtbot import QtBot

from app.core.catalog import load_catalog
from app.core.types import HubStatus, Lifecycle
from app.core.wire import HubEntry
from app.ui import i18n
from app.ui.download_text import duration
from app.ui.model_card import ModelCard
from tests.conftest import CHAT_REPO
from tests.fakes.fake_hub import FakeHub
from tests.ui.conftest import MACHINE, App


def downloading(**progress: Any) -> HubEntry:
    """A catalog model as the Hub lists it while it downloads."""
    first = load_catalog().entries[0].as_json()
    return cast(
        HubEntry,
        {
            **first,
            "status": HubStatus.DOWNLOADING,
            "lifecycle_status": Lifecycle.PENDING,
            "download_progress": {
                "percent": 43.0,
                "bytes_downloaded": 208_000_000,
                "bytes_total": 484_000_000,
                **progress,
            },
            "ready_nodes": [],
        },
    )


def test_the_card_shows_speed_and_time_left_then_why_and_when_it_retries(qtbot: QtBot) -> None:
    item = downloading(bytes_per_second=12_300_000, seconds_left=25, retry_at=None)
    card = ModelCard(item, MACHINE)
    qtbot.addWidget(card)
    card.show()
    assert card.progress.format() == "43% of 484.0 MB · 12.3 MB/s · 25 s left"
    assert not card.error.isVisible()
    waiting = downloading(bytes_per_second=0, seconds_left=None, retry_at=time.time() + 20.5)
    waiting["error"] = "Hugging Face could not be reached (ConnectError: refused)"
    card.update_item(waiting)
    assert card.progress.format() == "43% of 484.0 MB"  # no speed while nothing flows
    assert card.error.isVisible()
    assert card.error.text().startswith("retrying in 21 s: Hugging Face could not be reached")
    # The wait counts down by itself, with no new report from the node: a 1 s tick re-reads it
    # (the tick is fired by hand here, two seconds "later").
    assert card.countdown.isActive() and card.countdown.interval() == 1000
    progress = card.item["download_progress"]
    assert progress is not None and progress.get("retry_at") is not None
    progress["retry_at"] = float(progress.get("retry_at") or 0) - 2
    card.countdown.timeout.emit()
    assert card.error.text().startswith("retrying in 19 s: ")
    card.update_item(downloading(bytes_per_second=5, seconds_left=9, retry_at=None))
    assert not card.countdown.isActive() and not card.error.isVisible()


def test_the_figures_read_in_japanese() -> None:
    i18n.set_language("ja")
    try:
        assert duration(25) == "25 秒" and duration(200) == "4 分"
    finally:
        i18n.set_language("en")


def test_a_real_download_shows_its_speed_then_its_retry_on_the_local_row(
    gui: App, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    window.models.setCurrentWidget(window.local)
    local = window.local
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 30  # slow enough to watch

    def cell(column: int) -> str:
        item = local.table.item(0, column) if local.table.rowCount() else None
        return item.text() if item is not None else ""

    try:
        gui.desktop.state.register(repo=CHAT_REPO)
        gui.wait(lambda: "/s" in cell(2) and "left" in cell(2))
        card = gui.wait(lambda: window.hub.cards.get(CHAT_REPO))
        gui.wait(lambda: "/s" in card.progress.format())
        gui.screenshot(window, "local-downloading")
        model_hub.mode, model_hub.fail_after_bytes = "error503", 0
        gui.wait(lambda: "retrying" in cell(1) and "503" in cell(1))
        assert "/s" not in cell(2)
        # The Hub tab is behind the Local one: the label is shown, its tab is not.
        gui.wait(lambda: not card.error.isHidden() and "retrying" in card.error.text())
    finally:
        model_hub.mode, model_hub.fail_after_bytes = "ok", None
        model_hub.bytes_per_second = None
