"""The node detail panel: why a node is in its state, what its devices hold, and what it did
(its last day, its recent requests, its log), after real traffic through the real balancer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize

from app.core.logs import setup_logging
from app.core.types import NodeStatus
from app.ui.node_detail import status_reason
from tests.conftest import CHAT_REPO
from tests.ui.conftest import App
from tests.ui.test_contrast import show
from tests.ui.test_hub_fit import RTX_4090, _heartbeat, _node_joins
from tests.ui.test_keyboard import check_walk, in_both_schemes
from tests.ui.test_overview import GB, ask, node
from tests.ui.test_playground import ready_chat


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[None]:
    """llmlb's structured log on, as the app sets it up at start (the tests log to stderr)."""
    setup_logging(tmp_path / "logs-home")
    try:
        yield
    finally:
        setup_logging(None)


def test_the_node_detail_shows_its_recent_requests_its_day_and_its_log(
    logged: None, gui: App
) -> None:
    ready_chat(gui)
    ask(gui, 2)
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    window.show()
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all)
    page.table.selectRow(0)
    panel = page.panel
    assert "why: answering; last heartbeat " in page.detail.toPlainText()
    panel.setCurrentIndex(1)  # Activity
    table = panel.requests
    gui.wait(lambda: table.rowCount() == 2 and table.item(0, 1).text() == CHAT_REPO, timeout=30)
    assert table.item(0, 2).text() == "200" and table.item(0, 3).text().endswith(" ms")
    panel.setCurrentIndex(2)  # Log: this computer's node logs into llmlb's own file
    gui.wait(lambda: " app.node." in panel.log.toPlainText(), timeout=15)
    assert "INFO" in panel.log.toPlainText()
    gui.screenshot(window, "node-detail-log")
    panel.setCurrentIndex(1)
    gui.wait(lambda: panel.requests_graph.curves() > 0, timeout=30)
    assert "requests: now" in panel.requests_graph.text.text()
    gui.screenshot(window, "node-detail-activity")


@pytest.mark.parametrize("gui", [False], indirect=True, ids=["nodes-registered-by-the-test"])
def test_an_external_servers_log_is_said_to_be_out_of_reach(gui: App) -> None:
    gui.run(gui.desktop.client.add_external_node("outside", "http://127.0.0.1:9", None))
    window = gui.desktop.window
    window.show()
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all)
    page.table.selectRow(0)
    page.panel.setCurrentIndex(2)
    gui.wait(lambda: "external server" in page.panel.log.toPlainText(), timeout=15)
    assert page.panel.log.toPlainText() == (
        "This node's log cannot be read through llmlb: it is an external server."
    )


@pytest.mark.parametrize("gui", [False], indirect=True, ids=["nodes-registered-by-the-test"])
def test_the_detail_says_why_a_node_waits_or_is_offline(gui: App) -> None:
    gui.ctx.nodes.offline_after = 1.0
    token = gui.run(_node_joins(gui, "studio-pc", 9302))
    gui.run(_heartbeat(gui, token, [RTX_4090], 32 * GB))
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all)
    page.table.selectRow(0)
    detail = page.detail.toPlainText()
    assert (
        "GPU: NVIDIA GeForce RTX 4090 (CUDA): 18.2 GB free of 24.0 GB, 35% busy — 5.8 GB in use"
        in detail
    )
    gui.wait(lambda: "why: no heartbeat since " in page.detail.toPlainText(), timeout=15)
    assert "the node stopped or cannot be reached" in page.detail.toPlainText()


def test_status_reasons_in_words() -> None:
    now = time.time()
    assert status_reason(node("a", status=NodeStatus.PENDING), now) == (
        "it joined and waits for your approval (Approve, below the table)"
    )
    registering = node("b", status=NodeStatus.REGISTERING, ready_models=[1, 3])
    assert status_reason(registering, now) == "approved; 1 of 3 of its models ready"
    stale = node("c", metrics_stale=True, last_seen=now - 120)
    assert status_reason(stale, now) == (
        "its last heartbeat was 2 min ago: the figures below may be old"
    )


@pytest.mark.parametrize("gui", [False], indirect=True, ids=["nodes-registered-by-the-test"])
def test_the_node_panels_tabs_and_the_alerts_by_keyboard(gui: App) -> None:
    """The tabs a default walk does not open (Activity, Log) and an alert's Dismiss button:
    reached by Tab in reading order, named, focus visible, in light and dark."""
    gui.ctx.nodes.offline_after = 1.0
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    window.show()
    window.activateWindow()
    token = gui.run(_node_joins(gui, "studio-pc", 9302))
    gui.run(_heartbeat(gui, token, [RTX_4090], 32 * GB))
    show(gui, "overview")
    gui.wait(lambda: window.overview.alerts.shown, timeout=15)  # it went offline
    page = window.nodes
    failures = in_both_schemes(
        gui, lambda: check_walk(gui, window.overview, window.sidebar, "overview with an alert")
    )
    show(gui, "nodes")
    gui.wait(lambda: page.model.all)
    page.table.selectRow(0)
    for tab in (1, 2):
        page.panel.setCurrentIndex(tab)
        gui.settle(0.3)
        where = f"nodes, {page.panel.tabText(tab)} tab"

        def walk(where: str = where) -> list[str]:
            return check_walk(gui, page, window.sidebar, where)

        failures += in_both_schemes(gui, walk)
    assert not failures, "\n".join(failures)


def test_each_node_shows_its_own_requests_only(gui: App) -> None:
    ready_chat(gui)
    token = gui.run(_node_joins(gui, "studio-pc", 9302))  # has no model: serves nothing
    gui.run(_heartbeat(gui, token, [RTX_4090], 32 * GB))
    ask(gui, 2)  # answered by this computer's node
    window = gui.desktop.window
    window.show()
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: len(page.model.all) == 2)
    studio = next(i for i, n in enumerate(page.model.visible()) if n["name"] == "studio-pc")
    page.table.selectRow(studio)
    panel = page.panel
    panel.setCurrentIndex(1)
    graph = panel.requests_graph
    gui.wait(lambda: "requests: 0 throughout" in graph.text.text(), timeout=30)
    assert panel.requests.rowCount() == 0  # fetched with the graph: none of the other's
    page.table.selectRow(1 - studio)
    gui.wait(lambda: "peak 2" in graph.text.text(), timeout=30)
    assert panel.requests.rowCount() == 2
