"""The Logs page on the real balancer's structured log: tabs per source, filters by level and
keyword, live tail, and a download whose lines parse as JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

from app.core.logs import setup_logging
from app.ui.logs_model import LEVEL_COLUMN
from tests.conftest import RunningBalancer
from tests.fakes.fake_hub import FakeHub
from tests.fakes.fake_openai import FakeOpenAI
from tests.node.test_lan_nodes import NodeProcess, join, nodes
from tests.ui.conftest import App
from tests.ui.test_contrast import readings, switch

__all__ = ["nodes"]  # a fixture

log = logging.getLogger("app.server.test_logs_page")


@pytest.fixture
def logged(gui: App, tmp_path: Path) -> Iterator[App]:
    """The app writing its structured log, as the desktop app does (app_run, main)."""
    setup_logging(tmp_path / "logs-data")
    try:
        yield gui
    finally:
        setup_logging(None)


def shown_messages(gui: App) -> list[str]:
    page = gui.desktop.window.logs
    return [e["message"] for e in page.model.entries]


def test_balancer_entries_filtered_by_level_and_keyword_and_downloaded(
    logged: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gui = logged
    log.info("a routine note about pelicans")
    log.warning("a warning about pelicans")
    log.error("an error about herons")
    window = gui.desktop.window
    window.show_page("Logs")
    page = window.logs
    assert page.sources.tabText(0) == "Balancer"
    gui.wait(lambda: "an error about herons" in shown_messages(gui))
    messages = shown_messages(gui)
    assert messages.index("a routine note about pelicans") < messages.index("an error about herons")
    row = messages.index("an error about herons")
    assert page.model.data(page.model.index(row, LEVEL_COLUMN)) == "error"  # said in words

    page.level.setCurrentIndex(page.level.findData("WARNING"))
    gui.wait(lambda: "a routine note about pelicans" not in shown_messages(gui))
    assert "a warning about pelicans" in shown_messages(gui)

    page.keyword.setText("pelicans")
    QTest.keyClick(page.keyword, Qt.Key.Key_Return)
    gui.wait(lambda: shown_messages(gui) == ["a warning about pelicans"])
    gui.screenshot(window, "logs")

    target = tmp_path / "saved.jsonl"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), ""))
    )
    page.download_jsonl.click()
    gui.wait(target.exists)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [e["message"] for e in lines] == ["a warning about pelicans"]
    assert lines[0]["level"] == "WARNING"
    gui.wait(lambda: "Saved to" in page.note.text())

    target = tmp_path / "saved.log"  # the same entries as text, one line each
    page.download_text.click()
    gui.wait(target.exists)
    text = target.read_text(encoding="utf-8")
    assert text.count("\n") == 1 and "WARNING" in text and "a warning about pelicans" in text


def test_live_tail_adds_new_entries_while_shown(logged: App) -> None:
    gui = logged
    window = gui.desktop.window
    window.show_page("Logs")
    page = window.logs
    log.warning("before the tail")
    page.keyword.setText("tail")
    gui.wait(lambda: shown_messages(gui) == ["before the tail"])
    page.live.setChecked(True)
    assert page.tail_timer.isActive()
    log.warning("written while tailing")
    gui.wait(lambda: shown_messages(gui) == ["before the tail", "written while tailing"])
    window.show_page("Requests")
    assert not page.tail_timer.isActive()  # hidden: no fetches
    window.show_page("Logs")
    assert page.tail_timer.isActive()


def test_a_nodes_tab_shows_its_log_or_why_not(logged: App) -> None:
    gui = logged
    window = gui.desktop.window
    window.show_page("Logs")
    page = window.logs
    state = gui.desktop.state
    gui.wait(lambda: state.nodes and page.sources.count() == 1 + len(state.nodes))
    local = state.nodes[0]
    assert page.sources.tabText(1) == (local["name"] or local["id"])
    logging.getLogger("app.node.test_logs_page").warning("the node speaks")
    page.sources.setCurrentIndex(1)
    gui.wait(lambda: "the node speaks" in shown_messages(gui))
    assert page.source() == local["id"]


def test_a_nodes_log_read_before_it_died_stays_shown(
    logged: App, model_hub: FakeHub, nodes: list[NodeProcess], tmp_path: Path
) -> None:
    """A node on another machine dies while its log is tailed: what was read stays (it may say
    why), the page says the log stopped updating, and the tail keeps trying."""
    gui = logged
    ctx = gui.ctx

    async def joined() -> NodeProcess:
        async with aiohttp.ClientSession() as http:
            b = RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
            return await join(b, model_hub, tmp_path / "far-node", nodes)

    node = gui.run(joined())
    state = gui.desktop.state
    window = gui.desktop.window
    window.show_page("Logs")
    page = window.logs

    def tab() -> int | None:
        state.refresh()
        found = (i for i in range(page.sources.count()) if page.sources.tabData(i) == node.node_id)
        return next(found, None)

    page.sources.setCurrentIndex(gui.wait(tab))
    page.live.setChecked(True)
    # Its own line (with its id): this balancer's local node logs the same words in the
    # balancer's log, which the page shows until the node's own log comes in.
    said = f"registered with the balancer as {node.node_id}"
    gui.wait(lambda: any(said in m for m in shown_messages(gui)))
    read = shown_messages(gui)
    node.kill()
    gui.wait(lambda: page.note.text().startswith("The log stopped updating:"))
    assert shown_messages(gui) == read and page.tail_timer.isActive()
    gui.screenshot(window, "logs-node-died")


def test_an_external_servers_tab_says_why_it_has_no_log(logged: App) -> None:
    gui = logged
    server = FakeOpenAI(["outside-model"])  # a third-party server (outside our product)
    gui.run(server.__aenter__())
    try:
        added = gui.run(gui.desktop.client.add_external_node("outside", server.url, None))
        state = gui.desktop.state
        state.refresh()
        window = gui.desktop.window
        window.show_page("Logs")
        page = window.logs
        gui.wait(
            lambda: any(page.sources.tabData(i) == added["id"] for i in range(page.sources.count()))
        )
        page.sources.setCurrentIndex(
            next(i for i in range(page.sources.count()) if page.sources.tabData(i) == added["id"])
        )
        gui.wait(lambda: "not reachable" in page.note.text())
        assert page.note.text().startswith("This log cannot be shown:")
        assert page.model.rowCount() == 0
        gui.screenshot(window, "logs-external")
    finally:
        gui.run(server.__aexit__(None, None, None))


def test_level_colours_read_in_light_and_dark(logged: App) -> None:
    gui = logged
    log.info("an info line")
    log.warning("a warning line")
    log.error("an error line")
    logging.getLogger("app.server.test_logs_page").critical("a critical line")
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    window.show()
    window.show_page("Logs")
    gui.wait(lambda: "a critical line" in shown_messages(gui))
    words = {"info", "warning", "error", "critical"}
    failures: list[str] = []
    try:
        for scheme in ("light", "dark"):
            switch(gui, scheme)
            measured = [r for r in readings(window) if r.what.split("'")[1] in words]
            assert {r.what.split("'")[1] for r in measured} == words, scheme
            failures += [f"{scheme} {r}" for r in measured if r.ratio < r.needed]
            gui.screenshot(window, f"logs-levels-{scheme}")
    finally:
        switch(gui, "light")
    assert not failures, "\n".join(failures)
