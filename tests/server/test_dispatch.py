"""Node choice: least busy, prefix affinity, FIFO queue with limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from app.context import AppContext
from app.core.events import EventBus
from app.core.tasks import TaskSupervisor
from app.core.types import ModelState, NodeModelState, NodeStatus
from app.server.dispatch import Dispatcher, QueueFull, QueueTimeout, affinity_key
from app.server.nodes import NodeRegistry, NodeView
from tests.conftest import RunningBalancer, balancer_settings
from tests.fakes.fake_openai import FakeOpenAI
from tests.support.waiting import eventually


def registry(*names: str, slots: int = 1) -> NodeRegistry:
    reg = NodeRegistry(None, EventBus(), TaskSupervisor("t"), "admin")  # type: ignore[arg-type]
    for name in names:
        view = NodeView(
            id=name,
            name=name,
            url=f"http://{name}",
            token_hash=name,
            status=NodeStatus.ONLINE,
            metrics={"slots": slots},
        )
        view.models["m"] = NodeModelState("m", ModelState.READY, node_id=name, node_online=True)
        reg.nodes[name] = view
    return reg


async def test_least_busy_first_then_the_same_prefix_on_the_same_node() -> None:
    reg = registry("a", "b", slots=4)
    d = Dispatcher(reg)
    first = await d.acquire("m", set(), "k1")
    second = await d.acquire("m", set(), "k2")
    assert {first.id, second.id} == {"a", "b"}  # spread while both are idle
    d.release(second)
    again = await d.acquire("m", set(), "k1")
    assert again.id == first.id  # prefix affinity: one more in flight there is acceptable
    third = await d.acquire("m", set(), "k1")
    assert third.id != first.id  # ...but not when it is much busier


async def test_a_full_pool_queues_in_order_then_refuses() -> None:
    reg = registry("a")
    d = Dispatcher(reg, max_queue=2, max_wait=5)
    busy = await d.acquire("m", set())
    order: list[int] = []

    async def waiter(i: int) -> None:
        node = await d.acquire("m", set())
        order.append(i)
        await asyncio.sleep(0.01)
        d.release(node)

    tasks = [asyncio.create_task(waiter(i)) for i in range(2)]
    await eventually(lambda: d.waiting("m") == 2)
    with pytest.raises(QueueFull) as err:
        await d.acquire("m", set())
    assert err.value.headers["Retry-After"]
    d.release(busy)
    await asyncio.gather(*tasks)
    assert order == [0, 1] and d.waiting("m") == 0 and reg.nodes["a"].inflight == 0


async def test_slots_freed_together_all_go_to_waiting_requests() -> None:
    reg = registry("a", slots=4)
    d = Dispatcher(reg, max_wait=5)
    running = [await d.acquire("m", set()) for _ in range(4)]
    waiters = [asyncio.create_task(d.acquire("m", set())) for _ in range(4)]
    await eventually(lambda: d.waiting("m") == 4)
    for node in running:  # four answers end in the same decode step
        d.release(node)
    done, _ = await asyncio.wait(waiters, timeout=1)
    assert len(done) == 4 and d.waiting("m") == 0 and reg.nodes["a"].inflight == 4


async def test_a_queued_request_gives_up_after_the_wait_limit() -> None:
    reg = registry("a")
    d = Dispatcher(reg, max_wait=0.2)
    await d.acquire("m", set())
    with pytest.raises(QueueTimeout):
        await d.acquire("m", set())
    assert d.waiting("m") == 0


async def test_no_capable_node_is_a_lookup_error() -> None:
    d = Dispatcher(registry("a"))
    with pytest.raises(LookupError):
        await d.acquire("other", set())
    with pytest.raises(LookupError):
        await d.acquire("m", {"a"})  # the only node already failed this request


def test_affinity_keys_follow_the_conversation_opening() -> None:
    sys = {"role": "system", "content": "be brief"}
    a = affinity_key({"model": "m", "messages": [sys, {"role": "user", "content": "hi"}]})
    b = affinity_key(
        {
            "model": "m",
            "messages": [
                sys,
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
            ],
        }
    )
    c = affinity_key({"model": "m", "messages": [sys, {"role": "user", "content": "other"}]})
    assert a == b != c
    assert affinity_key({"model": "m"}) is None


async def test_busy_node_queue_full_429_and_wait_limit_504(tmp_path: Path) -> None:
    ctx = AppContext(balancer_settings(tmp_path / "d", queue_limit=1, queue_wait=1.0))
    await ctx.start()
    assert ctx.external is not None
    ctx.external.poll_interval = 0.1
    try:
        async with FakeOpenAI(["slow"], chunk_delay=0.5) as server, aiohttp.ClientSession() as http:
            b = RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
            status, _ = await b.post(
                "/v0/nodes/external", {"name": "one slot", "base_url": server.url, "slots": 1}
            )
            assert status == 201

            async def listed() -> bool:
                _, models = await b.get("/v1/models", headers={})
                return bool(models["data"])

            await eventually(listed)
            long = {
                "model": "slow",
                "messages": [{"role": "user", "content": "w " * 10}],
                "stream": True,
            }
            short = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(b.url + "/v1/chat/completions", json=long) as holding:
                await holding.content.readline()  # the node's one slot is taken for ~5 s
                queued = asyncio.create_task(b.post("/v1/chat/completions", short, headers={}))
                dispatcher = ctx.balancer.dispatcher
                await eventually(lambda: dispatcher.waiting("slow") == 1)  # the queue is full
                status, body = await b.post("/v1/chat/completions", short, headers={})
                assert status == 429 and body["error"]["code"] == "queue_full"
                status, body = await queued
                assert status == 504 and body["error"]["code"] == "queue_timeout"
                assert server.calls == 1  # neither waiting request reached the busy node
    finally:
        await ctx.stop()


async def test_every_request_is_recorded_with_its_node(balancer: RunningBalancer) -> None:
    ctx = balancer.ctx
    assert ctx.external is not None
    ctx.external.poll_interval = 0.1
    async with FakeOpenAI(["m1"]) as server:
        _, node = await balancer.post("/v0/nodes/external", {"name": "ext", "base_url": server.url})

        async def listed() -> bool:
            _, models = await balancer.get("/v1/models", headers={})
            return bool(models["data"])

        await eventually(listed)
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        assert (await balancer.post("/v1/chat/completions", body, headers={}))[0] == 200
        assert (await balancer.post("/v1/chat/completions", {**body, "stream": True}, headers={}))[
            0
        ] == 200
        assert (await balancer.post("/v1/chat/completions", {**body, "model": "nope"}, headers={}))[
            0
        ] == 404
    status, history = await balancer.get("/v0/requests?limit=10")
    assert status == 200
    assert [(h["model"], h["status"], h["stream"]) for h in history] == [
        ("nope", 404, False),
        ("m1", 200, True),
        ("m1", 200, False),
    ]
    assert history[1]["node_id"] == node["node_id"] and history[1]["latency_ms"] > 0
    assert "does not exist" in history[0]["error"]
    async with balancer.http.get(balancer.url + "/metrics") as r:
        text = await r.text()
    assert (
        'llmlb_requests_total{endpoint="/v1/chat/completions",model="m1",status="200"} 2.0' in text
    )
    assert 'llmlb_nodes{status="online"} 1.0' in text
