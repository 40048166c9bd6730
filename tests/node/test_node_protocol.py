"""The node protocol as the balancer and the node speak it: registration, heartbeats, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from app.context import AppContext
from tests.conftest import RunningBalancer, balancer_settings
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import CHAT_FILE, register_ready
from tests.support.waiting import eventually


async def test_the_local_node_is_approved_and_online(served: RunningBalancer) -> None:
    node = served.ctx.local_node
    assert node is not None
    await eventually(node.registered.wait)
    _, nodes = await served.get("/v0/nodes")
    [view] = nodes
    assert view["id"] == node.node_id and view["kind"] == "local"
    assert view["status"] in {"online", "registering"}
    name = await register_ready(served)

    async def online() -> dict[str, Any] | None:
        _, one = await served.get(f"/v0/nodes/{node.node_id}")
        return one if one["status"] == "online" else None

    view = await eventually(online)
    assert view["ready_models"] == [1, 1]
    assert view["models"][0]["name"] == name and view["models"][0]["state"] == "ready"
    assert view["metrics_stale"] is False
    assert view["metrics"]["system"]["memory_total_bytes"] > 0
    assert view["metrics"]["slots"] == 4 and view["metrics"]["free_slots"] == 4


async def test_the_node_answers_only_its_balancer(served: RunningBalancer) -> None:
    node = served.ctx.local_node
    assert node is not None
    await eventually(node.registered.wait)
    async with served.http.get(node.url + "/v1/models") as r:
        assert r.status == 401
    async with served.http.get(node.url + "/v1/models", headers={"X-Node-Token": "forged"}) as r:
        assert r.status == 401
    async with served.http.get(
        node.url + "/node/status", headers={"X-Balancer-Token": node.balancer_token or ""}
    ) as r:
        assert r.status == 200


async def test_heartbeats_and_registrations_need_the_right_secrets(
    served: RunningBalancer,
) -> None:
    url = served.url
    async with served.http.post(
        url + "/v0/health", json={"models": []}, headers={"X-Node-Token": "forged"}
    ) as r:
        assert r.status == 401
    async with served.http.post(url + "/v0/nodes", json={"url": "http://127.0.0.1:1"}) as r:
        assert r.status == 401
    async with served.http.post(
        url + "/v0/nodes",
        json={"url": "http://127.0.0.1:1"},
        headers={"Authorization": "Bearer wrong"},
    ) as r:
        assert r.status == 401
    _, cluster = await served.get("/v0/cluster")
    async with served.http.post(
        url + "/v0/nodes",
        json={"url": "http://127.0.0.1:1", "name": "joiner"},
        headers={"Authorization": f"Bearer {cluster['join_token']}"},
    ) as r:
        assert r.status == 201
        joined = await r.json()
    assert joined["status"] == "pending"  # a joiner waits for an admin
    async with served.http.post(
        url + "/v0/health", json={"models": []}, headers={"X-Node-Token": joined["node_token"]}
    ) as r:
        assert (await r.json())["status"] == "pending"
    status, view = await served.post(f"/v0/nodes/{joined['node_id']}/approve")
    assert status == 200 and view["status"] == "registering"
    status, _ = await served.delete(f"/v0/nodes/{joined['node_id']}")
    assert status == 204
    async with served.http.post(
        url + "/v0/health", json={"models": []}, headers={"X-Node-Token": joined["node_token"]}
    ) as r:
        assert r.status == 401


async def test_an_idle_model_is_unloaded_and_loads_again(tmp_path: Path, model_hub: object) -> None:
    ctx = AppContext(
        balancer_settings(tmp_path / "d", local_node=True, context_size=256, idle_unload_ttl=0.3)
    )
    await ctx.start()
    try:
        async with aiohttp.ClientSession() as http:
            b = RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
            name = await register_ready(b)
            body = {"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
            status, _ = await b.post("/v1/chat/completions", body, headers={})
            assert status == 200
            node = ctx.local_node
            assert node is not None
            runner = node.engines.runners[name]
            assert runner.loaded

            async def unloaded() -> bool:
                return not runner.loaded

            await eventually(unloaded, timeout=10)
            status, answer = await b.post("/v1/chat/completions", body, headers={})
            assert status == 200 and answer["usage"]["completion_tokens"] >= 1
    finally:
        await ctx.stop()


async def test_a_restarted_balancer_knows_its_node_again(
    tmp_path: Path, model_hub: FakeHub
) -> None:
    settings = balancer_settings(tmp_path / "d", local_node=True, context_size=256)
    ids: list[str | None] = []
    for _ in range(2):
        ctx = AppContext(settings)
        await ctx.start()
        try:
            async with aiohttp.ClientSession() as http:
                b = RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
                if not ids:
                    await register_ready(b)
                else:
                    name = "tiny/chat-gguf"

                    async def ready(b: RunningBalancer = b, name: str = name) -> bool:
                        _, models = await b.get("/v1/models", headers={})
                        return [m["id"] for m in models["data"]] == [name]

                    await eventually(ready)  # no new download: the files are on disk
                node = ctx.local_node
                assert node is not None
                ids.append(node.node_id)
                _, nodes = await b.get("/v0/nodes")
                assert len(nodes) == 1
        finally:
            await ctx.stop()
    assert ids[0] == ids[1]
    assert len(model_hub.file_requests(CHAT_FILE)) == 1  # one download (header reads aside)


async def test_nodes_can_be_renamed_tagged_and_annotated(served: RunningBalancer) -> None:
    node = served.ctx.local_node
    assert node is not None
    await eventually(node.registered.wait)
    status, view = await served.put(
        f"/v0/nodes/{node.node_id}", {"name": "desk GPU", "tags": "gpu, fast, gpu", "notes": "x"}
    )
    assert status == 200
    assert view["name"] == "desk GPU" and view["tags"] == ["gpu", "fast"] and view["notes"] == "x"
    _, again = await served.get(f"/v0/nodes/{node.node_id}")
    assert again["tags"] == ["gpu", "fast"]
    for body in ({"name": ""}, {"tags": 5}, {"notes": 1}):
        status, _ = await served.put(f"/v0/nodes/{node.node_id}", body)
        assert status == 400
    status, _ = await served.put("/v0/nodes/nope", {"name": "x"})
    assert status == 404


async def test_slots_zero_serves_one_request_at_a_time_on_the_plain_engine(
    tmp_path: Path, model_hub: object
) -> None:
    from app.node.engine.sequential import ModelRunner
    from tests.conftest import run_balancer

    settings = balancer_settings(tmp_path / "d", local_node=True, context_size=256, slots=0)
    async with run_balancer(settings) as b:
        name = await register_ready(b)
        body = {"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        status, answer = await b.post("/v1/chat/completions", body, headers={})
        assert status == 200 and answer["usage"]["completion_tokens"] >= 1
        node = b.ctx.local_node
        assert node is not None
        assert isinstance(node.engines.runners[name], ModelRunner)
        assert node.heartbeat_body()["slots"] == 1
