"""The Nodes page and the cluster/API-key settings, driven as a user would."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import aiohttp
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QMessageBox

from app.core.wire import DiscoveredNode
from tests.conftest import ENDLESS_REPO
from tests.ui.conftest import App
from tests.ui.test_desktop import click_confirm
from tests.ui.test_playground import ready_chat


async def _join(app: App, name: str, port: int = 9) -> dict[str, str]:
    async with app.desktop.client._http().post(
        app.ctx.base_url + "/v0/nodes",
        json={"url": f"http://127.0.0.1:{port}", "name": name},
        headers={"Authorization": f"Bearer {app.ctx.nodes.join_token}"},
    ) as r:
        assert r.status == 201
        return dict(await r.json())


def test_nodes_table_sort_page_approve_delete_and_export(gui: App, tmp_path: Path) -> None:
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all)
    assert page.model.all[0]["kind"] == "local"
    # The join token goes in the environment, never on a command line (ps shows those).
    assert "LLMLB_JOIN_TOKEN=llmlb-join-" in page.join.text()
    assert "--join-token" not in page.join.text()
    for i in range(30):
        gui.run(_join(gui, f"box-{i:02d}", 9000 + i))
    gui.desktop.state.refresh()
    gui.wait(lambda: len(page.model.all) == 31)
    assert page.model.pages() == 2 and page.model.rowCount() == 25
    page.next_button.click()
    assert page.model.rowCount() == 6 and page.page_label.text() == "page 2 of 2"
    page.prev_button.click()
    page.table.sortByColumn(0, page.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    names = [n["name"] for n in page.model.visible()]
    assert names[0] == "this computer" and names[1] == "box-29"
    page.table.sortByColumn(1, page.table.horizontalHeader().sortIndicatorOrder().AscendingOrder)
    statuses = [n["status"] for n in page.model.all]
    assert statuses == sorted(statuses)

    row = next(i for i, n in enumerate(page.model.visible()) if n["status"] == "pending")
    page.table.selectRow(row)
    chosen = page.selected()
    assert chosen is not None and page.approve_button.isEnabled()
    assert "status: pending" in page.detail.toPlainText()
    page.approve_button.click()
    gui.wait(
        lambda: any(
            n["id"] == chosen["id"] and n["status"] == "registering"
            for n in gui.desktop.state.nodes
        )
    )
    index = next(i for i, n in enumerate(page.model.all) if n["id"] == chosen["id"])
    page.model.set_page(index // 25)
    page.table.selectRow(index % 25)
    selected = page.selected()
    assert selected is not None and selected["id"] == chosen["id"]
    page.delete_button.click()
    click_confirm(gui, page)
    gui.wait(lambda: all(n["id"] != chosen["id"] for n in gui.desktop.state.nodes))

    page.export(tmp_path / "nodes.json", "json")
    page.export(tmp_path / "nodes.csv", "csv")
    exported = json.loads((tmp_path / "nodes.json").read_text())
    assert len(exported) == 30 and {n["id"] for n in exported} == {
        n["id"] for n in gui.desktop.state.nodes
    }
    rows = list(csv.reader((tmp_path / "nodes.csv").open()))
    assert rows[0][:3] == ["id", "Name", "Status"] and len(rows) == 31
    gui.screenshot(window, "nodes")


def test_api_keys_and_join_token_in_settings(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Settings")
    page = window.settings
    gui.wait(lambda: page.join_token.text().startswith("llmlb-join-"))
    old_token = page.join_token.text()
    page.rotate.click()
    click_confirm(gui, page)
    gui.wait(lambda: page.join_token.text() not in {old_token, "…"})

    page.key_name.setText("my editor")
    page.create_key.click()
    gui.wait(lambda: "sk-llmlb-" in page.new_key.text())
    assert "not shown again" in page.new_key.text()
    gui.wait(lambda: page.keys.count() == 1)
    assert "my editor" in page.keys.item(0).text()
    assert "sk-llmlb-" not in page.keys.item(0).text().split("(")[0]
    page.keys.setCurrentRow(0)
    page.revoke_key.click()
    click_confirm(gui, page)
    gui.wait(lambda: page.keys.count() == 0)


def test_what_nodes_send_shows_as_text_never_as_markup(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    markup = "<img src='x'><b>evil</b>"
    state = gui.desktop.state
    assert state.cluster is not None
    found = DiscoveredNode(
        name=markup, url="http://10.0.0.9:1", version=None, gpu=None, models=[], seen_at=0.0
    )
    state.cluster = {**state.cluster, "discovered": [found]}
    page.refresh()
    shown = QTextDocument()
    shown.setHtml(page.join.text())
    assert markup in shown.toPlainText()  # the tags are shown, not rendered
    gui.run(_join(gui, markup, 9100))
    state.refresh()
    gui.wait(lambda: any(n["name"] == markup for n in page.model.all))
    row = next(i for i, n in enumerate(page.model.visible()) if n["name"] == markup)
    page.table.selectRow(row)
    page.delete_button.click()
    box = page.property("confirmation")
    assert isinstance(box, QMessageBox)
    assert box.textFormat() == Qt.TextFormat.PlainText and markup in box.text()
    click_confirm(gui, page, accept=False)


def test_uptime_counts_from_the_nodes_current_run(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all and page.model.all[0]["status"] == "online")
    [local] = gui.ctx.nodes.nodes.values()
    local.created_at -= 3 * 86400  # it first joined three days ago; this run began just now
    gui.desktop.state.refresh()
    gui.wait(lambda: page.model.all[0]["created_at"] == local.created_at)
    uptime = page.model.data(page.model.index(0, 6))
    assert uptime == "0 min"


def test_this_computer_cannot_be_deleted_and_approve_is_only_for_pending_nodes(
    gui: App,
) -> None:
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all and page.model.all[0]["status"] == "online")
    joined = gui.run(_join(gui, "box-a", 9200))
    gui.desktop.state.refresh()
    gui.wait(lambda: len(page.model.all) == 2)

    def select(node_id: str) -> None:
        row = next(i for i, n in enumerate(page.model.visible()) if n["id"] == node_id)
        page.table.selectRow(row)

    select(joined["node_id"])
    assert page.approve_button.isEnabled() and page.delete_button.isEnabled()
    # Sorting keeps the chosen node selected and the buttons in step with it.
    order = page.table.horizontalHeader().sortIndicatorOrder()
    page.table.sortByColumn(0, order.DescendingOrder)
    page.table.sortByColumn(0, order.AscendingOrder)
    chosen = page.selected()
    assert chosen is not None and chosen["id"] == joined["node_id"]
    assert page.approve_button.isEnabled()

    local = next(n for n in page.model.all if n["kind"] == "local")
    select(local["id"])
    assert not page.approve_button.isEnabled()  # online: nothing to approve
    page.table.sortByColumn(1, order.DescendingOrder)
    chosen = page.selected()
    assert chosen is not None and chosen["id"] == local["id"]
    assert not page.approve_button.isEnabled()
    # This computer's node would only join again under a new id: not offered, and why.
    assert not page.delete_button.isEnabled()
    assert "cannot be deleted while llmlb runs" in page.delete_button.toolTip()
    assert "cannot be deleted while llmlb runs" in page.detail.toPlainText()
    gui.screenshot(window, "nodes-this-computer")
    # The balancer refuses it too, with the reason in the banner.
    gui.desktop.state.delete_node(local["id"])
    gui.wait(lambda: window.banner.isVisibleTo(window))
    assert "cannot be deleted while llmlb runs" in window.banner.label.text()
    assert [n["id"] for n in gui.desktop.state.nodes if n["kind"] == "local"] == [local["id"]]


def test_the_node_detail_shows_the_speed_measured_from_its_answers(gui: App) -> None:
    ready_chat(gui, ENDLESS_REPO)
    body = {
        "model": ENDLESS_REPO,
        "messages": [{"role": "user", "content": "go on"}],
        "max_tokens": 48,
    }

    async def ask() -> None:
        async with app_http(gui).post(gui.ctx.base_url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200

    gui.run(ask())
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    gui.desktop.state.refresh()
    gui.wait(lambda: any(n.get("speed") for n in page.model.all), timeout=15)
    page.table.selectRow(0)
    detail = page.detail.toPlainText()
    assert f"speed: {ENDLESS_REPO} " in detail and " tokens/s" in detail


def app_http(app: App) -> aiohttp.ClientSession:
    return app.desktop.client._http()
