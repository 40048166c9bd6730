"""The /v0/events socket pushes model changes to the GUI and nodes."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import RunningBalancer


async def _next_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    msg = await asyncio.wait_for(ws.receive_json(), 5)
    assert isinstance(msg, dict)
    return msg


async def test_register_and_delete_are_pushed(balancer: RunningBalancer) -> None:
    async with balancer.http.ws_connect(balancer.url + "/v0/events", headers=balancer.admin) as ws:
        assert (await _next_event(ws))["type"] == "hello"
        await balancer.post("/v0/models/register", {"model_id": "qwen3"})
        event = await _next_event(ws)
        assert event == {
            "type": "models.changed",
            "data": {"name": "qwen3", "change": "registered"},
        }
        await balancer.delete("/v0/models/qwen3")
        event = await _next_event(ws)
        assert event == {"type": "models.changed", "data": {"name": "qwen3", "change": "deleted"}}


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
