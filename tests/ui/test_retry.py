"""Retry on a model in error: the Hub card and the Local row show it, and pressing it has the
node load the model again (here after its file was fixed)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QPushButton

from app.core.types import ModelState
from app.node.engine.types import EngineError
from app.ui.model_card import ModelCard, card_state
from app.ui.widgets import CardState
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.test_memory_swap import alien
from tests.ui.conftest import App

NAME = "bad/alien-gguf"


def fail_to_load(gui: App) -> Path:
    """Ask the node for the model: llama.cpp refuses its file, the model is in error."""
    node = gui.ctx.local_node
    assert node is not None
    try:
        gui.run(node.models.runner_for(NAME))
    except EngineError:
        pass
    assert node.sync.states[NAME].state == ModelState.ERROR
    path = node.library.model_path(NAME)
    assert path is not None
    return path


def ready(card: ModelCard) -> bool:
    """The card shows the model ready."""
    return card_state(card.item) == CardState.READY


def row_retry(gui: App) -> QPushButton | None:
    """The Retry button of the model's row on the Local page, if shown."""
    local = gui.desktop.window.local
    if local.table.rowCount() != 1:
        return None
    cell = local.table.cellWidget(0, local.table.columnCount() - 1)
    found = [b for b in (cell.findChildren(QPushButton) if cell else []) if b.text() == "Retry"]
    return found[0] if found else None


def test_retry_clears_a_failed_load_from_the_hub_card_and_the_local_row(
    gui: App, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    model_hub.add(FakeRepo(NAME, {"alien-Q4_K_M.gguf": alien(tiny_models)}))
    window = gui.desktop.window
    window.show_page("Models")
    hub = window.hub
    gui.desktop.state.register(repo=NAME)
    gui.wait(lambda: NAME in hub.cards and ready(hub.cards[NAME]))
    card = hub.cards[NAME]
    assert not card.retry_button.isVisibleTo(card)  # only a model in error has it
    path = fail_to_load(gui)
    gui.wait(lambda: card.retry_button.isVisibleTo(card))
    assert "llama.cpp could not load" in card.error.text()
    gui.screenshot(card, "hub-retry")
    path.write_bytes(tiny_models["chat"])  # the file fixed
    card.retry_button.click()
    gui.wait(lambda: not card.retry_button.isVisibleTo(card) and ready(card))
    assert gui.run(gui.ctx.local_node.models.runner_for(NAME)).loaded

    # Broken again, and retried from the Local page this time.
    gui.run(gui.ctx.local_node.engines.drop(NAME))
    path.write_bytes(alien(tiny_models))
    window.models.setCurrentWidget(window.local)
    fail_to_load(gui)
    button = gui.wait(lambda: row_retry(gui))
    path.write_bytes(tiny_models["chat"])
    button.click()
    gui.wait(lambda: row_retry(gui) is None and ready(card))
