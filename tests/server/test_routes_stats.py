"""GET /v0/stats: real traffic through the balancer to its real node shows at once, counted,
timed and filtered as a dashboard reads it; the node's device use and disk come from its
heartbeats; bad parameters answer 400 in OpenAI's shape."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
import pytest

from app.context import DB_FILE
from app.core.events import Event, TrafficRecorded
from app.db.stats import MINUTE, StatsStore
from app.db.store import Store
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.node.conftest import register_ready, served
from tests.support.waiting import eventually

__all__ = ["served"]  # the fixture this module uses


def near(value: float | None, truth: float) -> bool:
    """Within the histograms' resolution (9.1%), or a rounding of the recorded figure."""
    return value is not None and abs(value - truth) <= 0.091 * truth + 0.01


async def local_node(b: RunningBalancer) -> str:
    """The id of the balancer's own node, once it has joined."""

    async def joined() -> list[str]:
        _, nodes = await b.get("/v0/nodes")
        return [n["id"] for n in nodes if n["name"] == "this computer"]

    [node] = await eventually(joined)
    return node


async def test_real_traffic_shows_in_the_stats_at_once(served: RunningBalancer) -> None:
    name = await register_ready(served)
    node = await local_node(served)
    events: list[Event] = []
    served.ctx.bus.subscribe(events.append)
    client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    chat: Any = [{"role": "user", "content": "hello"}]
    for _ in range(3):
        await client.chat.completions.create(model=name, messages=chat, max_tokens=6)
    stream = await client.chat.completions.create(
        model=name, messages=chat, max_tokens=6, stream=True, stream_options={"include_usage": True}
    )
    [usage] = [c.usage async for c in stream if c.usage is not None]
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="no-such-model", messages=chat)
    await client.close()

    # No waiting: the request just answered is in the open minute.
    status, stats = await served.get("/v0/stats?range=1h")
    assert status == 200, stats
    assert stats["range"] == "1h" and stats["step_seconds"] == 60
    totals = stats["totals"]
    assert totals["requests"] == 5 and totals["errors"] == 0  # a 404 is the client's mistake
    assert sum(b["requests"] for b in stats["buckets"]) == 5
    assert [g["key"] for g in stats["by_model"]] == [name]  # the made-up name is no group
    assert [(g["key"], g["requests"]) for g in stats["by_node"]] == [(node, 4)]

    _, records = await served.get("/v0/requests")
    answered = [r for r in records if r["status"] == 200]
    assert totals["tokens_in"] == sum(r["tokens_in"] for r in answered) > 0
    assert totals["tokens_out"] == sum(r["tokens_out"] for r in answered) > 0
    assert answered[0]["tokens_out"] == usage.completion_tokens  # the streamed one
    speed = sum(r["tokens_out"] for r in answered) / sum(r["generation_ms"] for r in answered)
    assert totals["tokens_per_second"] == pytest.approx(speed * 1000, rel=1e-3)
    # p50 and p95 are the recorded figures', to the bins' resolution.
    ttfts = sorted(r["latency_ms"] for r in records if r["latency_ms"] is not None)
    durations = sorted(r["duration_ms"] for r in records)
    assert near(totals["ttft_ms"]["p50"], ttfts[(len(ttfts) + 1) // 2 - 1])
    assert near(totals["ttft_ms"]["p95"], ttfts[-1])
    assert near(totals["latency_ms"]["p50"], durations[2])
    assert near(totals["latency_ms"]["p95"], durations[-1])

    # The dashboards heard of it without polling.
    heard = [e for e in events if isinstance(e, TrafficRecorded)]
    assert sum(e.requests for e in heard) == 5 and all(e.waiting == 0 for e in heard)

    # Filters.
    _, mine = await served.get(f"/v0/stats?range=1h&model={name}&node={node}")
    assert mine["model"] == name and mine["node"] == node and mine["totals"]["requests"] == 4
    _, elsewhere = await served.get("/v0/stats?range=1h&node=some-other-node")
    assert elsewhere["buckets"] == [] and elsewhere["totals"]["requests"] == 0
    assert elsewhere["nodes"] == []

    # The week, by the hour: the same traffic in the current hour.
    _, week = await served.get("/v0/stats?range=7d")
    assert week["step_seconds"] == 3600 and week["totals"]["requests"] == 5
    assert len(week["buckets"]) in (1, 2)  # 2 only when the test spans o'clock
    assert all(b["at"] % 3600 == 0 for b in week["buckets"])
    assert week["totals"]["ttft_ms"] == totals["ttft_ms"]


async def test_the_nodes_device_use_and_disk_come_from_its_heartbeats(
    served: RunningBalancer,
) -> None:
    node = await local_node(served)

    async def sampled() -> list[dict[str, Any]]:
        _, stats = await served.get(f"/v0/stats?node={node}")
        return [s for n in stats["nodes"] for s in n["samples"]]

    [sample, *_] = await eventually(sampled)
    assert 0 <= sample["cpu"] <= 1
    assert 0 < sample["memory_used_bytes"] <= sample["memory_total_bytes"]
    assert sample["gpu_utilization"] is None  # a CPU machine: no device reports a figure
    _, view = await served.get(f"/v0/nodes/{node}")
    system = view["metrics"]["system"]
    assert 0 < system["disk_free_bytes"] <= system["disk_total_bytes"]


@pytest.mark.parametrize(
    "query",
    [
        "range=2h",
        "range=",
        "model=",
        "model=" + "x" * 300,
        "node=%01",
        "node=" + "n" * 201,
        "model=a%0Ab",  # a line break: no model has one
    ],
)
async def test_bad_parameters_answer_400(balancer: RunningBalancer, query: str) -> None:
    status, body = await balancer.get("/v0/stats?" + query)
    assert status == 400, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == query.split("=")[0] and error["type"] == "invalid_request_error"


async def test_the_stats_need_the_admin_token(balancer: RunningBalancer) -> None:
    status, _ = await balancer.get("/v0/stats", headers={})
    assert status == 401
    status, empty = await balancer.get("/v0/stats")
    assert status == 200 and empty["range"] == "24h" and empty["buckets"] == []


async def test_a_clean_stop_writes_the_open_minute(tmp_path: Path) -> None:
    """Only a crash may lose the minute in progress."""
    async with run_balancer(balancer_settings(tmp_path / "data")) as b:
        history = b.ctx.balancer.history if b.ctx.balancer is not None else None
        assert history is not None
        history.record("/v1/chat/completions", "m", "n1", 200, False, time.perf_counter(), 5.0)
    store = Store(tmp_path / "data" / DB_FILE)
    await store.open()
    stats = StatsStore(store)
    rows = await stats.run(lambda: list(stats.traffic_sync(MINUTE, 0, None, None)))
    await store.close()
    assert [(node, counts.requests) for _, _, node, counts in rows] == [("n1", 1)]
