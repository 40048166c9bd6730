"""The Requests page as a user meets it after traffic through the real balancer to the real
node: the history newest first, what each request sent and got, why one failed, the queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest
from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.server.bodies import BODY_CAP
from app.ui.request_detail import BODY_CAP_KB
from tests.conftest import CHAT_REPO, ENDLESS_REPO
from tests.ui.conftest import App
from tests.ui.test_keyboard import check_walk, focus_on, in_both_schemes
from tests.ui.test_playground import ready_chat


async def chat(app: App, text: str, model: str = CHAT_REPO, max_tokens: int = 8) -> int:
    """One chat from a tool on the endpoint; its status."""
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            app.ctx.base_url + "/v1/chat/completions", json=body | {"max_tokens": max_tokens}
        ) as r:
            await r.read()
            return r.status


def test_chats_are_listed_newest_first_with_their_bodies_and_new_ones_come_on_top(
    gui: App,
) -> None:
    ready_chat(gui)
    assert gui.run(chat(gui, "the first question")) == 200
    assert gui.run(chat(gui, "the second question")) == 200
    window = gui.desktop.window
    window.show_page("Requests")
    page = window.requests
    model = page.model
    gui.wait(lambda: model.rowCount() >= 2)
    ids = [r["id"] for r in model.rows]
    assert ids == sorted(ids, reverse=True)  # newest first
    newest = model.rows[0]
    assert newest["model"] == CHAT_REPO and newest["status"] == 200
    cells = model.cells(newest)
    assert cells[3] == "/v1/chat/completions" and cells[4] == "200"

    page.table.selectRow(0)
    gui.wait(lambda: "the second question" in page.detail.request.text.toPlainText())
    request = page.detail.request.text.toPlainText()
    assert json.loads(request)["messages"][0]["content"] == "the second question"
    assert "\n  " in request  # pretty-printed
    response = json.loads(page.detail.response.text.toPlainText())
    assert response["choices"][0]["message"]["role"] == "assistant"
    assert page.detail.outcome.text().startswith("Answered")
    assert not page.detail.request.cut.isVisibleTo(page)
    gui.screenshot(window, "requests")

    # A request that finishes while the page is open lands on top, the picked row stays picked.
    shown = len(model.rows)
    assert gui.run(chat(gui, "the third question")) == 200
    gui.wait(lambda: len(model.rows) == shown + 1)
    assert model.rows[0]["id"] > newest["id"]
    assert page.table.currentIndex().row() == 1  # still the second question's row
    # One that finishes while another page is shown is there when the user comes back.
    window.show_page("Logs")
    assert gui.run(chat(gui, "the fourth question")) == 200
    gui.wait(lambda: page.stale)
    window.show_page("Requests")
    gui.wait(lambda: len(model.rows) == shown + 2)


def test_a_failed_request_says_why_in_plain_words_and_in_detail(gui: App) -> None:
    assert gui.run(chat(gui, "hello", model="no-such-model")) == 404
    window = gui.desktop.window
    window.show_page("Requests")
    page = window.requests
    gui.wait(lambda: page.model.rowCount() >= 1)
    row = page.model.rows[0]
    assert row["status"] == 404
    assert page.model.cells(row)[4] == "404 failed"  # in words, not by its colour alone
    page.table.selectRow(0)
    detail = page.detail
    gui.wait(lambda: detail.outcome.text().startswith("Failed"))
    assert detail.outcome.text() == "Failed: no model of that name is registered."
    assert not detail.details.isVisibleTo(page)
    detail.details_button.click()
    assert detail.details.isVisibleTo(page)
    text = detail.details.text()
    assert "Status: 404" in text and "does not exist" in text
    assert "/v1/chat/completions" in text
    gui.screenshot(window, "requests-failed")


def test_a_body_cut_at_the_cap_is_marked(gui: App) -> None:
    assert BODY_CAP_KB * 1024 == BODY_CAP  # the note says what the balancer keeps
    huge = "pelican " * (BODY_CAP // 8 + 1000)
    assert gui.run(chat(gui, huge, model="no-such-model")) == 404
    window = gui.desktop.window
    window.show_page("Requests")
    page = window.requests
    gui.wait(lambda: page.model.rowCount() >= 1)
    page.table.selectRow(0)
    body = page.detail.request
    gui.wait(lambda: body.text.toPlainText().startswith('{"model"'))  # raw: cut JSON
    assert body.cut.isVisibleTo(page)
    assert body.cut.text() == "Cut at 256 KB: the rest was not kept."
    assert len(body.text.toPlainText().encode()) <= BODY_CAP
    assert not page.detail.response.cut.isVisibleTo(page)  # the short error answer is whole


def test_older_requests_load_on_demand(gui: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.ui.requests_page.PAGE", 2)
    for i in range(3):
        assert gui.run(chat(gui, f"hello {i}", model="no-such-model")) == 404
    window = gui.desktop.window
    window.show_page("Requests")
    page = window.requests
    gui.wait(lambda: page.model.rowCount() == 2)
    assert page.older.isEnabled()
    page.fetch_newer()  # as when requests finish: a refresh is on its way…
    page.older.click()  # …and the click is not lost behind it
    gui.wait(lambda: page.model.rowCount() == 3)
    ids = [r["id"] for r in page.model.rows]
    assert ids == sorted(ids, reverse=True)
    gui.wait(lambda: not page.older.isEnabled())  # nothing older in the 7 days


@pytest.mark.parametrize("gui", [{"slots": 1}], indirect=True)
def test_the_queue_shows_a_request_waiting_while_the_only_slot_is_busy(gui: App) -> None:
    ready_chat(gui, ENDLESS_REPO)
    runners = gui.ctx.local_node.engines.runners
    first = asyncio.ensure_future(chat(gui, "go on forever", ENDLESS_REPO, 4000), loop=gui.loop)
    gui.wait(lambda: ENDLESS_REPO in runners and runners[ENDLESS_REPO].active)
    second = asyncio.ensure_future(chat(gui, "and me", ENDLESS_REPO, 4000), loop=gui.loop)
    window = gui.desktop.window
    window.show_page("Requests")
    panel = window.requests.queue
    try:
        gui.wait(lambda: panel.waiting.rowCount() == 1 and panel.running.rowCount() == 1)
        assert panel.waiting.item(0, 0).text() == ENDLESS_REPO
        assert panel.waiting.item(0, 1).text() == "1"  # next to run
        assert panel.timer.isActive()  # ticks while something waits
        assert "1 waiting, 1 running" in panel.summary.text()
        gui.screenshot(window, "requests-queue")
        window.show_page("Logs")
        assert not panel.timer.isActive()  # not while hidden
        window.show_page("Requests")
        gui.wait(panel.timer.isActive)
    finally:
        for task in (first, second):
            task.cancel()
        gui.run(_settled(first, second))
    gui.wait(lambda: panel.waiting.rowCount() == 0 and panel.running.rowCount() == 0)
    gui.wait(lambda: not panel.timer.isActive())  # an idle queue is not polled


async def _settled(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await task


def test_a_picked_request_by_keyboard_alone(gui: App) -> None:
    """Arrows pick a request, Tab reaches its Details and bodies in reading order, each named,
    focus visible in light and dark; Space opens the details."""
    assert gui.run(chat(gui, "hello", model="no-such-model")) == 404
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    window.show()
    window.activateWindow()
    gui.wait(lambda: QApplication.activeWindow() is window, timeout=5)
    window.show_page("Requests")
    page = window.requests
    gui.wait(lambda: page.model.rowCount() >= 1)
    focus_on(gui, page.table)
    QTest.keyClick(page.table, Qt.Key.Key_Down)
    gui.wait(lambda: page.detail.outcome.text().startswith("Failed"))
    focus_on(gui, page.detail.details_button)
    QTest.keyClick(page.detail.details_button, Qt.Key.Key_Space)
    assert page.detail.details.isVisibleTo(page)
    failures = in_both_schemes(gui, lambda: check_walk(gui, page, window.sidebar, "requests"))
    assert not failures, "\n".join(failures)


def test_pages_built_again_for_a_language_switch_leave_nothing_listening(gui: App) -> None:
    """The window is built again when the language changes; requests that finish afterwards
    reach the new pages only (the old ones' handlers called into deleted widgets)."""
    window = gui.desktop.window
    window.show()
    window.show_page("Requests")
    old = window.requests
    gui.wait(lambda: old.loaded)
    window.retranslate()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    assert window.requests is not old
    heard: list[object] = []
    gui.desktop.state.trafficRecorded.connect(heard.append)
    assert gui.run(chat(gui, "hello", model="no-such-model")) == 404
    gui.wait(lambda: heard)
    gui.wait(lambda: window.requests.model.rowCount() == 1)
