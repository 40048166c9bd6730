"""Adding an external OpenAI-compatible server from the Nodes page, as a user does: a bad
address is refused in words, a good one shows in the list with its models, the Playground
picker offers them and a chat through the balancer answers; deleting it takes them away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.ui.server_dialog import check_url
from tests.fakes.fake_openai import FakeOpenAI
from tests.ui.conftest import App


@pytest.fixture
def outside(gui: App) -> Iterator[FakeOpenAI]:
    """A third-party OpenAI-compatible server (outside our product), with an API key."""
    server = FakeOpenAI(["outside-model"], api_key="sekrit", answer="hello from outside")
    gui.run(server.__aenter__())
    try:
        yield server
    finally:
        gui.run(server.__aexit__(None, None, None))


@pytest.mark.parametrize("gui", [False], indirect=True)
def test_an_added_server_lists_its_models_and_answers_in_the_playground(
    gui: App, outside: FakeOpenAI
) -> None:
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    assert page.add_server_button.isVisibleTo(page)
    dialog = page.open_server_dialog()
    # Checked here before anything is sent: no scheme, then no name.
    dialog.url.setText("localhost:8080")
    dialog.name.setText("outside-box")
    dialog.submit()
    assert dialog.isVisible() and dialog.error.isVisibleTo(dialog)
    assert "http://" in dialog.error.text()
    dialog.url.setText(outside.url)
    dialog.name.setText("")
    dialog.submit()
    assert "name" in dialog.error.text()
    # What only the balancer knows: its reason, in words, and the dialog stays open.
    dialog.url.setText("http://someone@127.0.0.1:9")
    dialog.name.setText("outside-box")
    dialog.submit()
    gui.wait(lambda: dialog.buttons.isEnabled() and "refused" in dialog.error.text())
    assert "base_url" in dialog.error.text() and dialog.isVisible()
    gui.screenshot(dialog, "nodes-add-server-error")
    dialog.url.setText(outside.url + "/v1")  # as OpenAI base URLs are written
    dialog.api_key.setText("sekrit")
    dialog.submit()
    gui.wait(lambda: not dialog.isVisible())
    table = page.table.model()

    def row() -> int | None:
        names = [table.index(r, 0).data() for r in range(table.rowCount())]
        return names.index("outside-box") if "outside-box" in names else None

    def ready_row() -> int | None:
        at = row()
        return at if at is not None and table.index(at, 4).data() == "1/1" else None

    gui.wait(lambda: ready_row() is not None)  # listed, with its one model ready
    at = ready_row()
    assert at is not None
    page.table.selectRow(at)
    assert "outside-model: ready" in page.detail.toPlainText()
    gui.screenshot(window, "nodes-external-server")
    # The Playground offers the server's model and a chat through the balancer answers.
    window.show_page("Playground")
    chat = window.playground.chat
    gui.wait(lambda: chat.model.findData("outside-model") >= 0)
    index = chat.model.findData("outside-model")
    assert chat.model.itemText(index) == "outside-model  (outside-box)"
    chat.model.setCurrentIndex(index)
    chat.input.setPlainText("Who are you?")
    chat.send()
    gui.wait(lambda: chat.task is not None and chat.task.done())
    assert chat.widgets[-1].text.strip() == "hello from outside"
    assert outside.calls == 1
    # Deleted like any node: gone from the list, its model from the picker.
    window.show_page("Nodes")
    page.table.selectRow(row() or 0)
    selected = page.selected()
    assert selected is not None and selected["name"] == "outside-box"
    assert page.delete_button.isEnabled()
    page.delete_button.click()
    box = page.property("confirmation")
    assert "add it again" in box.text()
    next(b for b in box.buttons() if b.text() == "Delete").click()
    gui.wait(lambda: row() is None)
    gui.wait(lambda: chat.model.findData("outside-model") < 0)


def test_addresses_are_checked_before_sending() -> None:
    assert check_url("http://192.168.1.20:8080") is None
    assert check_url("https://llm.example.com/proxy") is None
    assert check_url("") is not None
    assert check_url("192.168.1.20:8080") is not None
    assert check_url("ftp://host") is not None
    assert check_url("http://host:notaport") is not None
    assert check_url("http://host/?x=1") is not None
