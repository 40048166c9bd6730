"""The fit badges and the node detail follow the devices the nodes' heartbeats report."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from app.core.node_protocol import DeviceJson
from tests.ui.conftest import App

GB = 10**9
RTX_4090: DeviceJson = {
    "name": "NVIDIA GeForce RTX 4090",
    "backend": "cuda",
    "total_bytes": 24 * GB,
    "free_bytes": int(18.2 * GB),
    "utilization": 0.35,
}
RTX_6000: DeviceJson = {
    "name": "NVIDIA RTX 6000 Ada",
    "backend": "cuda",
    "total_bytes": 48 * GB,
    "free_bytes": 47 * GB,
    "utilization": None,
}


async def _node_joins(app: App, name: str, port: int, local: bool = False) -> str:
    """Register a node as `llmlb node` does (the local one with the admin token, approved at
    once; another with the join token, then approved by the admin); its node token."""
    credential = app.ctx.admin_token if local else app.ctx.nodes.join_token
    body = {"url": f"http://127.0.0.1:{port}", "name": name, "local": local}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            app.ctx.base_url + "/v0/nodes",
            json=body,
            headers={"Authorization": f"Bearer {credential}"},
        ) as r:
            assert r.status == 201
            joined = await r.json()
    if not local:
        await app.desktop.client.approve_node(joined["node_id"])
    return str(joined["node_token"])


async def _heartbeat(app: App, token: str, devices: list[DeviceJson], ram: int) -> None:
    body: dict[str, Any] = {
        "models": [],
        "devices": devices,
        "system": {"memory_total_bytes": ram, "memory_available_bytes": ram // 2},
        "slots": 4,
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(
            app.ctx.base_url + "/v0/health", json=body, headers={"X-Node-Token": token}
        ) as r:
            assert r.status == 200


@pytest.mark.parametrize("gui", [False], indirect=True, ids=["nodes-registered-by-the-test"])
def test_the_badge_follows_this_machines_gpu_and_the_tooltip_names_lan_nodes(gui: App) -> None:
    window = gui.desktop.window
    window.show_hub()
    hub = window.hub
    seven_b, qwq = hub.cards["qwen2.5-7b-instruct"], hub.cards["qwq"]  # 7.4 GB, 29.8 GB
    # No node has reported yet: judged on the probed RAM (16 GB), as before.
    assert seven_b.fit_badge.text() == "fits in RAM, slower"
    assert "this machine has 16.0 GB of memory" in seven_b.fit_badge.toolTip()
    assert qwq.fit_badge.text() == "won't fit"
    assert hub.cards["qwen3"].fit_badge.text() == "fits"  # small enough for a CPU

    # This computer's node reports a 24 GB GPU and 32 GB of RAM.
    local = gui.run(_node_joins(gui, "this computer", 9301, local=True))
    gui.run(_heartbeat(gui, local, [RTX_4090], 32 * GB))
    gui.wait(lambda: seven_b.fit_badge.text() == "fits on GPU")
    assert seven_b.fit_badge.state == "fits"
    assert seven_b.fit_badge.toolTip() == (
        "needs 7.4 GB of memory; this machine has NVIDIA GeForce RTX 4090 (24.0 GB) "
        "and 32.0 GB of RAM"
    )
    assert qwq.fit_badge.text() == "fits in RAM, slower"  # 24 GB on the GPU, the rest in RAM

    # A workstation on the LAN with a 48 GB card: the tooltip says where each model fits.
    studio = gui.run(_node_joins(gui, "studio-pc", 9302))
    gui.run(_heartbeat(gui, studio, [RTX_6000], 128 * GB))
    gui.wait(lambda: "studio-pc" in qwq.fit_badge.toolTip())
    assert qwq.fit_badge.toolTip().splitlines()[1] == (
        "Fits on: studio-pc (NVIDIA RTX 6000 Ada, 48.0 GB), "
        "this computer (NVIDIA GeForce RTX 4090 + RAM)"
    )
    assert seven_b.fit_badge.toolTip().splitlines()[1] == (
        "Fits on: this computer (NVIDIA GeForce RTX 4090, 24.0 GB), "
        "studio-pc (NVIDIA RTX 6000 Ada, 48.0 GB)"
    )
    assert qwq.fit_badge.text() == "fits in RAM, slower"  # the badge is about this machine
    hub.scroller.ensureWidgetVisible(qwq)  # among cards that fit the GPU and ones that do not
    gui.screenshot(window, "hub-fit-gpu")


def test_the_node_detail_lists_each_device_with_its_memory(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Nodes")
    page = window.nodes
    studio = gui.run(_node_joins(gui, "studio-pc", 9303))
    gui.run(_heartbeat(gui, studio, [RTX_4090], 64 * GB))
    gui.wait(lambda: any(n["name"] == "studio-pc" and n["metrics"] for n in page.model.all))

    def select(name: str) -> str:
        row = next(i for i, n in enumerate(page.model.visible()) if n["name"] == name)
        page.table.selectRow(row)
        return page.detail.toPlainText()

    detail = select("studio-pc")
    assert "GPU: NVIDIA GeForce RTX 4090 (CUDA): 18.2 GB free of 24.0 GB, 35% busy" in detail
    assert "memory: 32.0 GB free of 64.0 GB" in detail
    row = next(i for i, n in enumerate(page.model.visible()) if n["name"] == "studio-pc")
    assert page.model.data(page.model.index(row, 3)) == "NVIDIA GeForce RTX 4090"
    gui.screenshot(window, "node-detail-devices")
    # This computer (a CPU machine, as here) says so once it has reported.
    gui.wait(lambda: any(n["kind"] == "local" and n["metrics"] for n in page.model.all))
    assert "GPU: none (CPU)" in select("this computer")
