"""The Model Hub as a user meets it: a registration that shows where it went, a search that
finds models by what they do, no invisible tab stop, and a cancel question with clear answers."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from tests.node.conftest import CHAT_REPO
from tests.ui.conftest import App


def test_registering_from_the_dialog_scrolls_to_the_new_card_and_says_so(
    gui: App, tiny_models: dict[str, bytes], model_hub
) -> None:
    window = gui.desktop.window
    window.resize(900, 640)
    window.show_page("Models")
    hub = window.hub
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 20  # still downloading when seen
    bar = hub.scroller.verticalScrollBar()
    assert bar.value() == 0
    dialog = hub.open_register_dialog()
    dialog.repo.setText(CHAT_REPO)
    dialog.submit()
    gui.wait(lambda: not dialog.isVisible())
    assert hub.notice.isVisibleTo(hub) and hub.notice.text().startswith("Registered")
    gui.wait(lambda: CHAT_REPO in hub.cards)
    card = hub.cards[CHAT_REPO]
    assert list(hub.cards)[-1] == CHAT_REPO  # the new card is last in a long list...
    gui.wait(lambda: bar.value() > 0)  # ...and the list scrolls down to it
    gui.wait(lambda: not card.visibleRegion().isEmpty())
    assert card.property("highlighted") is True
    assert hub.notice.text().startswith(f"Registered {card.title.text()}")
    gui.screenshot(window, "model-hub-registered")
    # A later refresh (download progress) does not pull the list back to it.
    bar.setValue(0)
    gui.desktop.state.refresh()
    gui.settle(0.3)
    assert bar.value() == 0


def test_search_finds_models_by_tag_and_description(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    hub = window.hub

    def shown() -> set[str]:
        return {k for k, c in hub.cards.items() if c.isVisibleTo(hub)}

    hub.search.setText("coding")  # a tag: in no model's id or name
    assert shown() == {"qwen2.5-7b-instruct", "phi4", "qwen3-coder", "phi-3-mini"}
    chat = {k for k, c in hub.cards.items() if "TextGeneration" in c.item["capabilities"]}
    assert set(hub.cards) - chat == {"nomic-embed-text-v1.5"}
    hub.search.setText("chat")  # every chat model in the catalog is tagged chat
    assert shown() == chat
    hub.search.setText("textgeneration")  # a capability
    assert shown() == chat
    hub.search.setText("vision")  # the model that reads images
    assert shown() == {"gemma3"}
    word = hub.cards["qwq"].item["description"].split()[-1].strip(".").lower()
    hub.search.setText(word)  # a word of a description
    assert "qwq" in shown()
    hub.search.setText("Qwen3 0.6")  # the display name still works
    assert shown() == {"qwen3"}
    gui.screenshot(window, "model-hub-search")


def test_the_hub_has_no_invisible_tab_stop(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    hub = window.hub
    stops: list[QWidget] = []
    widget: QWidget = hub.search
    for _ in range(200):  # walk the whole focus chain once
        following = widget.nextInFocusChain()
        if following is None or following is hub.search:
            break
        widget = following
        if hub.isAncestorOf(widget) and widget.focusPolicy().value & 1 and widget.isVisible():
            stops.append(widget)
    assert hub.scroller not in stops and hub.scroller.viewport() not in stops
    assert all(w.accessibleName() or w is hub.register_button for w in stops)


def test_the_cancel_download_question_has_distinct_answers(
    gui: App, tiny_models: dict[str, bytes], model_hub
) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    hub = window.hub
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 60
    gui.desktop.state.register(repo=CHAT_REPO)
    gui.wait(lambda: CHAT_REPO in hub.cards)
    card = hub.cards[CHAT_REPO]
    gui.wait(lambda: card.status.state == "downloading")
    card.button.click()
    box = hub.property("confirmation")
    assert isinstance(box, QMessageBox) and box.isVisible()
    texts = sorted(b.text() for b in box.buttons())
    assert texts == ["Keep downloading", "Stop download"]
    gui.screenshot(box, "model-hub-cancel-download")
    box.button(QMessageBox.StandardButton.Cancel).click()  # keep it
    gui.settle(0.3)
    assert card.status.state == "downloading"
    card.button.click()
    box = hub.property("confirmation")
    [stop] = [b for b in box.buttons() if b.text() == "Stop download"]
    stop.click()
    gui.wait(lambda: card.status.state == "available" or CHAT_REPO not in hub.cards)
