"""Any OpenAI-compatible server joins the pool as an external node."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import openai

from app.core.events import EventBus
from app.core.tasks import TaskSupervisor
from app.core.types import NodeStatus
from app.server.external_nodes import ExternalServers
from app.server.node_view import NodeView
from app.server.nodes import NodeRegistry
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_openai import FakeOpenAI
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually


async def test_an_external_server_serves_its_models_through_the_balancer(
    balancer: RunningBalancer,
) -> None:
    balancer.ctx.external.poll_interval = 0.2
    async with FakeOpenAI(["llama-3-8b"], api_key="their-key") as server:
        status, node = await balancer.post(
            "/v0/nodes/external",
            {"name": "vLLM box", "base_url": server.url + "/v1", "api_key": "their-key"},
        )
        assert status == 201 and node["kind"] == "external"
        api = openai.AsyncOpenAI(base_url=balancer.url + "/v1", api_key="x", max_retries=0)

        async def listed() -> list[str]:
            return [m.id for m in (await api.models.list()).data]

        assert await eventually(listed) == ["llama-3-8b"]
        answer = await api.chat.completions.create(
            model="llama-3-8b", messages=[{"role": "user", "content": "hi there"}]
        )
        assert answer.choices[0].message.content == "echo: hi there"
        stream = await api.chat.completions.create(
            model="llama-3-8b", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert text.strip() == "echo: a b c"
        assert server.calls == 2
        _, view = await balancer.get(f"/v0/nodes/{node['node_id']}")
        assert view["status"] == "online" and view["models"][0]["name"] == "llama-3-8b"
        # It is never asked to download anything: registrations do not reach it.
        status, _ = await balancer.post("/v0/models/register", {"model_id": "qwen3"})
        assert status == 201
    # The server went away: the node goes offline, its model leaves /v1/models.
    balancer.ctx.nodes.offline_after = 0.5

    async def offline() -> bool:
        _, v = await balancer.get(f"/v0/nodes/{node['node_id']}")
        return v["status"] == "offline"

    await eventually(offline, timeout=10)
    assert [m.id for m in (await api.models.list()).data] == []


async def test_bad_external_nodes_are_refused(balancer: RunningBalancer) -> None:
    for body in (
        {},
        {"name": "x", "base_url": "ftp://x"},
        {"name": "", "base_url": "http://x"},
        {"name": "x", "base_url": "http://x", "api_key": 5},
    ):
        status, answer = await balancer.post("/v0/nodes/external", body)
        assert status == 400
        assert_openai_error(answer)


async def test_polls_and_sync_notices_share_one_session_closed_once_at_stop(
    tmp_path: Path,
) -> None:
    async with run_balancer(balancer_settings(tmp_path / "d")) as b:
        ctx = b.ctx
        assert ctx.external is not None and ctx.nodes is not None and ctx.balancer is not None
        session = ctx.http
        assert session is not None and not session.closed
        assert ctx.external.http is session and ctx.nodes.http is session
        assert ctx.balancer.external is ctx.external
        ctx.external.poll_interval = 0.1
        async with FakeOpenAI(["m1"]) as server:
            _, node = await b.post("/v0/nodes/external", {"name": "e", "base_url": server.url})

            async def online() -> bool:
                _, v = await b.get(f"/v0/nodes/{node['node_id']}")
                return bool(v["status"] == "online")

            assert await eventually(online)
    assert session.closed and ctx.http is None
    await ctx.stop()  # a second stop is harmless


async def test_a_poll_keeps_its_own_short_deadline_on_a_long_lived_session() -> None:
    """A server that accepts and never answers costs a poll 5 s, not the session's deadline."""

    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read the request, never answer
        await reader.read(1 << 16)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    registry = NodeRegistry(None, EventBus(), TaskSupervisor("t"), "admin")  # type: ignore[arg-type]
    long_lived = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))
    try:
        external = ExternalServers(registry, long_lived)
        view = NodeView(
            id="x",
            name="x",
            url=f"http://127.0.0.1:{port}",
            token_hash="",
            kind="external",
            status=NodeStatus.REGISTERING,
        )
        started = time.monotonic()
        await asyncio.wait_for(external._poll_once(view), 15)
        assert time.monotonic() - started < 10
        assert view.status == NodeStatus.REGISTERING and view.models == {}
    finally:
        await long_lived.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_what_an_external_server_lists_is_bounded(balancer: RunningBalancer) -> None:
    from aiohttp import web

    listing: dict[str, Any] = {}

    async def models(request: web.Request) -> web.Response:
        return web.json_response(listing)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        balancer.ctx.external.poll_interval = 0.1
        # Thousands of models, some with names no client could use.
        names = [f"m{i}" for i in range(1000)]
        listing["data"] = [{"id": "x" * 5000}, {"id": "bad\nname"}] + [{"id": n} for n in names]
        status, node = await balancer.post("/v0/nodes/external", {"name": "big", "base_url": url})
        assert status == 201

        async def listed() -> list[str]:
            _, answer = await balancer.get("/v1/models", headers={})
            return [m["id"] for m in answer["data"]]

        served = await eventually(listed, timeout=10)
        assert len(served) <= 256 and all(len(n) <= 200 and n.isprintable() for n in served)
        # An answer past the cap (2 MB) is not read: the server goes offline, not online.
        balancer.ctx.nodes.offline_after = 0.5
        listing["data"] = [{"id": "y" * 190 + str(i)} for i in range(10_000)]

        async def offline() -> bool:
            _, view = await balancer.get(f"/v0/nodes/{node['node_id']}")
            return bool(view["status"] == "offline")

        await eventually(offline, timeout=10)
    finally:
        await runner.cleanup()
