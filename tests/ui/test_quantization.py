"""The Model Hub's quantization picker: the catalog model's other files, each with its size and
fit, and Register registering the one picked; the fit on a remote server judges its nodes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from app.core.system import Fit, Machine
from app.core.wire import HubEntry, Quantization
from app.ui.fit import Fleet, fleet_of, verdict
from app.ui.model_card import ModelCard
from app.ui.widgets import human_bytes
from tests.conftest import GGUF_BYTES
from tests.ui.conftest import App
from tests.ui.test_connect import Served, remote_gui  # noqa: F401  (a fixture)

GB = 10**9
# The offscreen platform cannot grab the keyboard for an opened list (a real one can).
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support grabbing the keyboard")


@pytest.mark.parametrize("gui", [False], indirect=True)
def test_the_quantization_picked_on_the_card_is_the_one_registered(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    hub = window.hub
    card = hub.cards["qwen3"]
    # Before the list is opened it offers the catalog's own file (the Hub is not asked
    # about every card); opened, it lists the fake Hub repo's Q4_K_M and a Q8_0 twice its size.
    assert card.quant.isVisibleTo(card) and card.quant.count() == 1
    card.quant.showPopup()
    gui.wait(lambda: card.quant.count() == 2)
    assert card.quant.view().isVisible()  # still open, now complete
    card.quant.hidePopup()
    texts = [card.quant.itemText(i) for i in range(card.quant.count())]
    q8_size = human_bytes(len(GGUF_BYTES) * 2)
    assert texts[0].startswith("Q4_K_M · ") and texts[0].endswith("fits")
    assert texts[1] == f"Q8_0 · {q8_size} · fits"
    assert card.quant.currentText() == texts[0]  # the catalog's own choice first
    card.quant.setCurrentIndex(card.quant.findData("Q8_0"))
    # The sizes and the fit badge follow the choice.
    assert f"{q8_size} file" in card.meta.text() and "Q8_0" in card.meta.text()
    memory = card.quants[1]["required_memory_bytes"]
    assert f"needs {human_bytes(memory)} of memory" in card.fit_badge.toolTip()
    gui.screenshot(card, "model-hub-quantization")
    card.button.click()  # Register
    client = gui.desktop.client

    async def registered() -> dict[str, object] | None:
        models = await client.models()
        return next((dict(m) for m in models if m["id"] == "qwen3:Q8_0"), None)

    model = gui.wait(registered)
    assert model["quantization"] == "Q8_0"
    assert model["size_bytes"] == len(GGUF_BYTES) * 2
    assert not any(m["id"] == "qwen3" for m in gui.run(client.models()))  # not the default
    gui.wait(lambda: "qwen3:Q8_0" in hub.cards)  # its card shows, outlined, and says so
    assert hub.notice.text().startswith("Registered")
    assert not hub.cards["qwen3:Q8_0"].quant.isVisibleTo(hub.cards["qwen3:Q8_0"])


def _entry(required: int) -> HubEntry:
    return cast(
        HubEntry,
        {
            "id": "big",
            "name": "Big",
            "description": "",
            "repo": "acme/big",
            "size_bytes": required * 2 // 3,
            "required_memory_bytes": required,
            "quantization": "Q4_K_M",
            "status": "available",
            "download_progress": None,
            "ready_nodes": [],
            "tags": [],
            "capabilities": ["TextGeneration"],
        },
    )


def test_the_fit_badge_follows_the_chosen_quantization(qtbot: object) -> None:
    small = Machine(ram_bytes=16 * GB, available_bytes=12 * GB)
    card = ModelCard(_entry(9 * GB), Fleet(small))
    quants: list[Quantization] = [
        {
            "quantization": "Q4_K_M",
            "size_bytes": 6 * GB,
            "required_memory_bytes": 9 * GB,
            "default": True,
        },
        {
            "quantization": "Q8_0",
            "size_bytes": 12 * GB,
            "required_memory_bytes": 18 * GB,
            "default": False,
        },
    ]
    card.set_quantizations(quants)
    assert card.fit_badge.state != Fit.TOO_BIG
    assert card.quant.itemText(1).endswith("won't fit")  # said in the list before it is picked
    assert card.register_id() == "big"
    card.quant.setCurrentIndex(1)
    assert card.fit_badge.state == Fit.TOO_BIG and card.fit_badge.text() == "won't fit"
    assert card.register_id() == "big:Q8_0"
    card.deleteLater()


@pytest.fixture
def remote(remote_gui: tuple[App, Served]) -> Iterator[tuple[App, Served]]:  # noqa: F811
    yield remote_gui


def test_on_a_remote_server_the_fit_is_judged_on_its_nodes(
    remote: tuple[App, Served],
) -> None:
    gui, _server = remote
    state = gui.desktop.state
    hub = gui.desktop.window.hub
    gui.wait(lambda: state.nodes and state.nodes[0]["metrics"] and "phi4" in hub.cards)
    ram = state.nodes[0]["metrics"]["system"]["memory_total_bytes"]  # type: ignore[index]
    tip = hub.cards["phi4"].fit_badge.toolTip()
    # Not this computer (the window's MACHINE claims 16 GB), the server's node and its RAM.
    assert "this machine" not in tip
    assert "the server's node has" in tip and human_bytes(ram) in tip


def test_a_remote_server_without_node_figures_says_the_fit_is_unknown() -> None:
    # `llmlb serve --no-local-node` before any node reported: not this computer's RAM.
    here = Machine(ram_bytes=64 * GB, available_bytes=60 * GB)
    judged = verdict(GB, fleet_of([], here, remote=True))
    assert judged.label == "fit unknown"
    assert "no node of the server has reported its memory" in judged.tooltip
    assert verdict(GB, fleet_of([], here)).label == "fits"  # this computer's own balancer
