"""The live queue: while the one slot of a real node is busy, the next request shows waiting
at position 1 with an ETA from the measured request time, in GET /v0/queue and in Prometheus,
and its answer says where it waited; a full queue and a wait past the limit say so too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.events import EventBus
from app.core.tasks import TaskSupervisor
from app.core.types import ModelState, NodeModelState, NodeStatus
from app.core.wire import NodeInfo
from app.server.dispatch import POSITION_HEADER, Dispatcher, QueueTimeout, Ticket
from app.server.nodes import NodeRegistry, NodeView
from tests.conftest import ENDLESS_REPO, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import register_ready
from tests.support.waiting import eventually


@pytest.fixture
async def one_slot(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A balancer whose local node decodes one request at a time; a queue of one."""
    settings = balancer_settings(
        tmp_path / "data",
        local_node=True,
        slots=1,
        context_size=4096,
        idle_unload_ttl=600.0,
        queue_limit=1,
        queue_wait=60.0,
    )
    async with run_balancer(settings) as b:
        yield b


async def metric(b: RunningBalancer, name: str, model: str) -> float | None:
    """A sample of /metrics for `model`, read with Prometheus' own parser."""
    async with b.http.get(b.url + "/metrics") as r:
        text = await r.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == model:
                return float(sample.value)
    return None


async def chat(
    b: RunningBalancer, body: dict[str, Any], key: str
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with b.http.post(b.url + "/v1/chat/completions", json=body, headers=headers) as r:
        return r.status, await r.json(), dict(r.headers)


async def test_a_request_behind_a_busy_slot_shows_its_place_and_eta(
    one_slot: RunningBalancer,
) -> None:
    b = one_slot
    model = await register_ready(b, ENDLESS_REPO)
    status, created = await b.post("/v0/api-keys", {"name": "alice"})
    assert status == 201, created
    key = created["key"]
    short = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    status, _, headers = await chat(b, short, key)
    assert status == 200 and POSITION_HEADER not in headers  # a free slot: no wait
    long = {**short, "max_tokens": 3000, "stream": True}  # runs for seconds on this node
    async with b.http.post(
        b.url + "/v1/chat/completions", json=long, headers={"Authorization": f"Bearer {key}"}
    ) as holding:
        assert holding.status == 200
        await holding.content.readline()  # the node's one slot is busy
        waiting = asyncio.create_task(chat(b, short, key))

        async def queued() -> dict[str, Any] | None:
            status, queue = await b.get("/v0/queue")
            assert status == 200, queue
            return queue if queue["waiting"] else None

        queue = await eventually(queued)
        [entry] = queue["waiting"]
        assert entry["model"] == model and entry["position"] == 1
        assert entry["client"] == "alice"  # the API key's name
        assert entry["endpoint"] == "/v1/chat/completions" and entry["node_id"] is None
        assert entry["eta_seconds"] is not None and entry["eta_seconds"] > 0  # measured
        [running] = queue["running"]
        assert running["node_id"] == holding.headers["x-llmlb-node"]
        assert running["position"] is None and running["model"] == model
        assert queue["models"] == [{"model": model, "waiting": 1, "running": 1, "slots": 1}]
        assert await metric(b, "llmlb_queue_depth", model) == 1

        # The queue holds one: the next request is refused, told where it would have been.
        status, body, headers = await chat(b, short, key)
        assert status == 429 and body["error"]["code"] == "queue_full"
        assert headers[POSITION_HEADER] == "2"
        holding.close()
    # The stream's client left: its generation stops, the waiting request runs.
    status, answer, headers = await waiting
    assert status == 200, answer
    assert headers[POSITION_HEADER] == "1"  # it waited, first in line
    assert await metric(b, "llmlb_queue_depth", model) == 0
    assert await metric(b, "llmlb_queue_wait_seconds_count", model) == 1

    async def idle() -> bool:
        _, queue = await b.get("/v0/queue")
        return queue == {"waiting": [], "running": [], "models": []}

    await eventually(idle)


def one_node(slots: int = 1) -> NodeRegistry:
    """A registry with one live node that has model `m` ready."""
    reg = NodeRegistry(None, EventBus(), TaskSupervisor("t"), "admin")  # type: ignore[arg-type]
    view = NodeView(
        id="a",
        name="a",
        url="http://a",
        token_hash="a",
        status=NodeStatus.ONLINE,
        info=NodeInfo(slots=slots),
    )
    view.models["m"] = NodeModelState("m", ModelState.READY, node_id="a", node_online=True)
    reg.nodes["a"] = view
    return reg


async def test_a_wait_past_the_limit_says_where_it_waited() -> None:
    d = Dispatcher(one_node(), max_wait=0.2)
    busy = await d.acquire("m", set(), ticket=Ticket("m", "/v1/completions"))
    with pytest.raises(QueueTimeout) as err:
        await d.acquire("m", set(), ticket=Ticket("m", "/v1/completions"))
    assert err.value.headers[POSITION_HEADER] == "1"
    assert d.snapshot()["waiting"] == []  # gone from the queue
    d.release(busy)


async def test_the_eta_counts_the_turns_of_every_slot_ahead() -> None:
    d = Dispatcher(one_node(slots=2), max_wait=30)
    tickets = [Ticket("m", "/v1/chat/completions", client="alice")]
    tickets += [Ticket("m", "/v1/chat/completions") for _ in range(4)]
    held = [await d.acquire("m", set(), ticket=t) for t in tickets[:2]]
    d.durations["m"] = 4.0  # as if measured: 4 s per request
    waiters = [asyncio.create_task(d.acquire("m", set(), ticket=t)) for t in tickets[2:]]
    await eventually(lambda: d.waiting("m") == 3)
    snapshot = d.snapshot()
    assert [(e["position"], e["eta_seconds"]) for e in snapshot["waiting"]] == [
        (1, 4.0),
        (2, 4.0),
        (3, 8.0),
    ]
    assert [e["client"] for e in snapshot["running"]] == ["alice", None]
    for node, ticket in zip(held, tickets, strict=False):
        d.release(node, ticket)
    for task, ticket in zip(waiters, tickets[2:], strict=True):
        d.release(await task, ticket)
    assert d.snapshot()["running"] == [] and d.waiting("m") == 0


async def test_answered_requests_measure_the_model_s_request_time() -> None:
    d = Dispatcher(one_node())
    ticket = Ticket("m", "/v1/chat/completions")
    node = await d.acquire("m", set(), ticket=ticket)
    d.release(node, ticket, ok=False)  # a failure says nothing about the model's speed
    assert "m" not in d.durations
    node = await d.acquire("m", set(), ticket=ticket)
    d.release(node, ticket, ok=True)
    assert d.durations["m"] >= 0
