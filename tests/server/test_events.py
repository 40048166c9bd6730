"""The /v0/events socket pushes model changes to the GUI and nodes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from tests.conftest import RunningBalancer
from tests.fakes.fake_hub import FakeHub
from tests.server.test_node_trust import MODEL, beat, join


async def _next_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive_json(), 5)
    assert isinstance(msg, dict)
    return msg


def downloading(done: int) -> dict[str, Any]:
    """A node's report for MODEL, `done` bytes into its download."""
    return {"name": MODEL, "state": "downloading", "downloaded_bytes": done, "total_bytes": 10**9}


async def test_register_and_delete_are_pushed(balancer: RunningBalancer) -> None:
    async with balancer.http.ws_connect(balancer.url + "/v0/events", headers=balancer.admin) as ws:
        hello = await _next_event(ws)
        assert hello["type"] == "hello"
        seq = hello["seq"]
        await balancer.post("/v0/models/register", {"model_id": "qwen3"})
        event = await _next_event(ws)
        assert event == {
            "type": "models.changed",
            "seq": seq + 1,
            "data": {"name": "qwen3", "change": "registered"},
        }
        await balancer.delete("/v0/models/qwen3")
        event = await _next_event(ws)
        assert event == {
            "type": "models.changed",
            "seq": seq + 2,
            "data": {"name": "qwen3", "change": "deleted"},
        }


async def test_events_need_the_admin_token(balancer: RunningBalancer) -> None:
    async with balancer.http.get(balancer.url + "/v0/events") as r:
        assert r.status == 401
    # A browser cannot set headers on a WebSocket: it asks for a one-time ticket instead (the
    # admin token itself never goes in a URL; see tests/server/test_edge.py).
    _, answer = await balancer.post("/v0/events/ticket")
    async with balancer.http.ws_connect(
        f"{balancer.url}/v0/events?ticket={answer['ticket']}"
    ) as ws:
        assert (await _next_event(ws))["type"] == "hello"


async def test_server_stop_closes_open_sockets(balancer: RunningBalancer) -> None:
    ws = await balancer.http.ws_connect(balancer.url + "/v0/events", headers=balancer.admin)
    await _next_event(ws)
    await asyncio.wait_for(balancer.ctx.stop(), 5)
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()


async def test_nothing_about_a_deleted_model_follows_its_deletion(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    """The report: after rapid register/delete cycles, `model.progress` for a model arrived
    after its `models.changed: deleted`, so a GUI applying events in order kept showing it.
    A node keeps reporting a model it is downloading until its next sync tells it otherwise,
    so its heartbeats race every deletion; the events socket must still read in order."""
    _, joined = await join(balancer)
    await balancer.post(f"/v0/nodes/{joined['node_id']}/approve")
    received: list[dict[str, Any]] = []
    cycles = 60
    async with balancer.http.ws_connect(balancer.url + "/v0/events", headers=balancer.admin) as ws:
        assert (await _next_event(ws))["type"] == "hello"

        async def report_progress() -> None:
            # What a node does while downloading: a heartbeat whenever a chunk lands.
            done = 0
            while True:
                done += 1
                await beat(balancer, joined["node_token"], {"models": [downloading(done)]})

        reporter = asyncio.create_task(report_progress())
        try:
            for _ in range(cycles):
                status, _ = await balancer.post("/v0/models/register", {"repo": MODEL})
                assert status == 201
                await asyncio.sleep(0.01)  # a few heartbeats while it is registered
                status, _ = await balancer.delete(f"/v0/models/{MODEL}")
                assert status == 204
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        # A last registration marks the end of the stream for this test.
        await balancer.post("/v0/models/register", {"model_id": "qwen3"})
        while not received or received[-1]["data"].get("name") != "qwen3":
            received.append(await _next_event(ws))
    deleted = False
    late = 0
    for event in received:
        data = event["data"]
        if data.get("name") != MODEL:
            continue
        if event["type"] == "models.changed":
            deleted = data["change"] == "deleted"
        elif event["type"] == "model.progress" and deleted:
            late += 1
    progress = [e for e in received if e["type"] == "model.progress"]
    assert progress, "the node's progress must reach the socket while the model is registered"
    assert late == 0, f"{late} model.progress events came after the model's deletion"
    seqs = [e["seq"] for e in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq must increase"
