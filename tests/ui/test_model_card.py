"""A Hub card tells why a download waits (the Hub unreachable) instead of a silent 0 %."""

from __future__ import annotations

from typing import cast

from pytestqt.qtbot import QtBot

from app.core.catalog import load_catalog
from app.core.types import HubStatus, Lifecycle
from app.core.wire import HubEntry
from app.ui.model_card import ModelCard
from tests.ui.conftest import MACHINE


def entry() -> HubEntry:
    """A catalog model as the Hub lists it while its download waits to retry."""
    first = load_catalog().entries[0].as_json()
    return cast(
        HubEntry,
        {
            **first,
            "status": HubStatus.DOWNLOADING,
            "lifecycle_status": Lifecycle.PENDING,
            "download_progress": {"percent": 0.0, "bytes_downloaded": 0, "bytes_total": 10},
            "ready_nodes": [],
            "error": "download interrupted (ConnectError: no route to the Hub); retrying in 24 s",
        },
    )


def test_a_waiting_download_shows_why_and_the_note_goes_when_bytes_flow(qtbot: QtBot) -> None:
    item = entry()
    card = ModelCard(item, MACHINE)
    qtbot.addWidget(card)
    card.show()
    assert card.error.isVisible() and "retrying in 24 s" in card.error.text()
    assert card.progress.isVisible()  # still a download, not a failure
    del item["error"]
    item["download_progress"] = {"percent": 50.0, "bytes_downloaded": 5, "bytes_total": 10}
    card.update_item(item)
    assert not card.error.isVisible()
