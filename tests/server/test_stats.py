"""The time series: finished requests and heartbeats fold into minute buckets that count what
a dashboard shows (requests, errors, tokens, tokens/s, p50/p95), survive a restart once their
minute closed, and become hours after a day, with the same totals. Time is a clock the test
moves, never a sleep."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.core.events import Event, EventBus, TrafficRecorded
from app.core.tasks import TaskSupervisor
from app.core.wire import HistoryRow, NodeMetrics
from app.db.request_store import RequestStore
from app.db.stats import HOUR, MINUTE, StatsStore
from app.db.store import Store
from app.server.history import RequestHistory
from app.server.node_samples import NodeSamples
from app.server.stats import Stats
from app.server.stats_answer import BINS, bin_of, bin_value, percentile

DAY = 24 * HOUR
T0 = 1_800_000_000 - 1_800_000_000 % DAY + 10 * HOUR  # 10:00 on some day
KNOWN = {"m1", "m2"}


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stats_over(store: Store, clock: Clock) -> Stats:
    return Stats(StatsStore(store), NodeSamples(clock), KNOWN.__contains__, clock)


def row(at: float, **fields: Any) -> HistoryRow:
    values: dict[str, Any] = {
        "at": at,
        "endpoint": "/v1/chat/completions",
        "model": "m1",
        "node_id": "n1",
        "status": 200,
        "stream": False,
        "latency_ms": 100.0,
        "duration_ms": 1000.0,
        "error": None,
        "tokens_in": 10,
        "tokens_out": 20,
        "generation_ms": 500.0,
        "client": None,
    }
    values.update(fields)
    return HistoryRow(**values)  # type: ignore[typeddict-item]


def near(value: float | None, truth: float) -> bool:
    """Within the histograms' resolution (9.1%)."""
    return value is not None and abs(value - truth) <= 0.091 * truth


def test_percentiles_are_within_the_bins_resolution() -> None:
    for ms in (0.2, 1.0, 7.3, 120.0, 4_500.0, 3_600_000.0):
        assert near(bin_value(bin_of(ms)), ms)
    assert bin_of(0.0) == 0 and bin_of(float("nan")) == 0 and bin_of(1e12) == BINS - 1
    h: dict[int, int] = {}
    for ms in range(1, 101):  # 1..100 ms
        h[bin_of(ms)] = h.get(bin_of(ms), 0) + 1
    assert near(percentile(h, 0.5), 50) and near(percentile(h, 0.95), 95)
    assert percentile({}, 0.5) is None


async def test_a_minute_of_traffic_counts_what_the_dashboard_shows(store: Store) -> None:
    clock = Clock(T0 + 30)
    stats = stats_over(store, clock)
    rows = [
        row(T0 + i % 50, latency_ms=10.0 * (i + 1), duration_ms=100.0 * (i + 1)) for i in range(20)
    ]
    rows += [
        row(T0 + 1, status=500, error="node failed", tokens_in=None, tokens_out=None),
        row(T0 + 2, status=429, node_id=None, tokens_in=None, tokens_out=None),
        row(T0 + 3, status=200, error="the node broke off the stream"),  # an error
        row(T0 + 4, status=200, error="the client left mid-stream"),  # not an error
        row(T0 + 5, status=400, error="bad body", tokens_in=None, tokens_out=None),
        row(T0 + 6, status=404, model="made-up", node_id=None, tokens_in=None, tokens_out=None),
        row(T0 + 7, model="m2", node_id="n2", generation_ms=None),  # tokens, no speed
    ]
    folded = await stats.flush(rows)
    assert folded.requests == 27 and folded.errors == 3

    answer = await stats.query("1h", None, None)
    assert answer["step_seconds"] == MINUTE and answer["since"] == T0 - 59 * MINUTE
    [bucket] = answer["buckets"]  # the open minute, not written yet, is there
    assert bucket["at"] == T0 and bucket == {**answer["totals"], "at": T0}
    assert bucket["requests"] == 27 and bucket["errors"] == 3
    assert bucket["tokens_in"] == 23 * 10 and bucket["tokens_out"] == 23 * 20
    # tokens/s over the rows with a generation time: 22 answers of 20 tokens in 0.5 s.
    assert bucket["tokens_per_second"] == pytest.approx(40.0)
    assert bucket["ttft_ms"]["p50"] is not None and bucket["ttft_ms"]["p95"] is not None
    assert bucket["ttft_ms"]["p50"] <= bucket["ttft_ms"]["p95"]
    assert bucket["latency_ms"]["p50"] <= bucket["latency_ms"]["p95"]  # type: ignore[operator]

    models = {g["key"]: g["requests"] for g in answer["by_model"]}
    assert models == {"m1": 25, "m2": 1}  # "made-up" names no group: totals only
    nodes = {g["key"]: g["requests"] for g in answer["by_node"]}
    assert nodes == {"n1": 24, "n2": 1}  # two requests reached no node
    assert answer["by_model"][0]["key"] == "m1"  # busiest first

    only = await stats.query("1h", "m2", None)
    assert only["totals"]["requests"] == 1 and only["model"] == "m2"
    assert only["totals"]["tokens_per_second"] is None
    assert (await stats.query("1h", None, "n2"))["totals"]["requests"] == 1
    nothing = await stats.query("1h", "m1", "n2")
    assert nothing["buckets"] == [] and nothing["totals"]["requests"] == 0
    assert nothing["totals"]["ttft_ms"] == {"p50": None, "p95": None}
    # Prometheus reads the token totals and last minute's speed of known models on nodes.
    assert stats.tokens[("m1", "n1")] == (22 * 10, 22 * 20)
    assert ("made-up", "") not in stats.tokens and stats.rates["m1"] == pytest.approx(40.0)


async def test_percentiles_of_real_latencies(store: Store) -> None:
    clock = Clock(T0 + 59)
    stats = stats_over(store, clock)
    ttfts = [5.0 + 3 * i for i in range(100)]  # 5 .. 302 ms
    await stats.flush([row(T0, latency_ms=t, duration_ms=10 * t) for t in ttfts])
    totals = (await stats.query("24h", None, None))["totals"]
    assert near(totals["ttft_ms"]["p50"], sorted(ttfts)[49])
    assert near(totals["ttft_ms"]["p95"], sorted(ttfts)[94])
    assert near(totals["latency_ms"]["p95"], 10 * sorted(ttfts)[94])


async def test_a_closed_minute_survives_a_restart_and_stop_writes_the_open_one(
    store: Store,
) -> None:
    clock = Clock(T0 + 10)
    stats = stats_over(store, clock)
    await stats.flush([row(T0 + 5), row(T0 + 6)])
    clock.now = T0 + MINUTE + 1  # the minute closed: the next flush writes it
    await stats.flush([row(T0 + MINUTE + 1)])

    crashed = stats_over(store, clock)  # a new process: only what was written
    answer = await crashed.query("1h", None, None)
    assert [(b["at"], b["requests"]) for b in answer["buckets"]] == [(T0, 2)]

    await stats.close()  # a clean stop writes the open minute too
    after_stop = await stats_over(store, clock).query("1h", None, None)
    assert [(b["at"], b["requests"]) for b in after_stop["buckets"]] == [(T0, 2), (T0 + MINUTE, 1)]
    # Written twice (a restart in the same minute), a minute adds up.
    again = stats_over(store, clock)
    await again.flush([row(T0 + MINUTE + 2)])
    await again.close()
    last = (await stats_over(store, clock).query("1h", None, None))["buckets"][-1]
    assert last["requests"] == 2


async def test_after_a_day_minutes_become_hours_with_the_same_totals(store: Store) -> None:
    clock = Clock(T0)
    stats = stats_over(store, clock)
    for minute in range(0, 120, 10):  # two hours of traffic, a flush every ten minutes
        clock.now = T0 + minute * MINUTE + 30
        await stats.flush([row(clock.now, latency_ms=10.0 + minute) for _ in range(3)])
    clock.now = T0 + 2 * HOUR
    await stats.flush([])
    day = await stats.query("24h", None, None)
    week = await stats.query("7d", None, None)
    assert len(day["buckets"]) == 12 and day["totals"]["requests"] == 36
    # The week is by the hour, the last day's minutes merged into their hours.
    assert week["step_seconds"] == HOUR
    assert [(b["at"], b["requests"]) for b in week["buckets"]] == [(T0, 18), (T0 + HOUR, 18)]

    clock.now = T0 + DAY + 2 * HOUR + 1  # a day later: the flusher rolls them up
    await stats.flush([row(clock.now)])
    minutes = await stats.store.run(lambda: list(stats.store.traffic_sync(MINUTE, 0, None, None)))
    assert [at for at, *_ in minutes] == []  # the recent one is still open in memory
    later_day = await stats.query("24h", None, None)
    assert [b["requests"] for b in later_day["buckets"]] == [1]
    later_week = await stats.query("7d", None, None)
    assert [(b["at"], b["requests"]) for b in later_week["buckets"]] == [
        (T0, 18),
        (T0 + HOUR, 18),
        (T0 + DAY + 2 * HOUR, 1),
    ]
    assert later_week["totals"]["requests"] == 37
    # Percentiles merge exactly: the hours give what the minutes gave.
    assert later_week["buckets"][0]["ttft_ms"] == week["buckets"][0]["ttft_ms"]

    clock.now = T0 + 10 * DAY  # past the week: gone
    await stats.flush([])
    assert (await stats.query("7d", None, None))["buckets"] == []


def metrics(
    load: float = 2.0,
    cores: int = 4,
    loaded: list[str] | None = None,
    devices: list[dict[str, Any]] | None = None,
) -> NodeMetrics:
    return {
        "active_requests": 0,
        "loaded_models": loaded or [],
        "ready_models": [0, 0],
        "sync_state": None,
        "sync_progress": None,
        "system": {
            "cpu_count": cores,
            "load_average": load,
            "memory_total_bytes": 16_000,
            "memory_available_bytes": 4_000,
        },
        "devices": devices or [],  # type: ignore[typeddict-item]
        "slots": 1,
        "free_slots": 1,
    }


GPU = {"name": "g", "backend": "cuda", "total_bytes": 1000, "free_bytes": 250, "utilization": 0.5}


async def test_heartbeats_become_per_minute_averages_and_load_counts(store: Store) -> None:
    clock = Clock(T0 + 1)
    stats = stats_over(store, clock)
    samples = stats.samples
    samples.beat("n1", None, metrics(load=2.0, loaded=["m1"], devices=[GPU]))
    clock.now = T0 + 3
    samples.beat(
        "n1",
        metrics(loaded=["m1"]),
        metrics(load=40.0, loaded=["m2"], devices=[GPU, {**GPU, "utilization": None}]),
    )
    samples.beat("n2", None, metrics(cores=0))  # no core count: no CPU figure
    await stats.flush([])
    answer = await stats.query("1h", None, None)
    series = {s["node_id"]: s["samples"] for s in answer["nodes"]}
    [n1] = series["n1"]
    assert n1["at"] == T0
    assert n1["cpu"] == pytest.approx((0.5 + 1.0) / 2)  # 40 / 4 cores is capped at 1
    assert n1["memory_used_bytes"] == 12_000 and n1["memory_total_bytes"] == 16_000
    assert n1["gpu_utilization"] == 0.5  # the device without a figure is not a zero
    assert n1["gpu_memory_total_bytes"] == (1000 + 2000) / 2
    assert n1["gpu_memory_used_bytes"] == (750 + 1500) / 2
    [n2] = series["n2"]
    assert n2["cpu"] is None and n2["gpu_utilization"] is None
    assert (await stats.query("1h", None, "n2"))["nodes"] == [{"node_id": "n2", "samples": [n2]}]
    # The first heartbeat since our start is not news; the second swapped m1 for m2.
    assert samples.loads == {("n1", "m2"): 1} and samples.unloads == {("n1", "m1"): 1}


async def test_recorded_requests_reach_the_stats_and_the_event_bus(store: Store) -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    stats = Stats(StatsStore(store), NodeSamples(), KNOWN.__contains__)
    history = RequestHistory(RequestStore(store), TaskSupervisor("t"), stats=stats, bus=bus)
    started = time.perf_counter()
    history.record(
        "/v1/chat/completions",
        "m1",
        "n1",
        200,
        True,
        started,
        12.0,
        tokens_in=7,
        tokens_out=9,
        generation_ms=90.0,
    )
    history.record("/v1/chat/completions", "m1", "n1", 502, False, started, None, "no answer")
    await history.flush()
    [event] = [e for e in events if isinstance(e, TrafficRecorded)]
    assert (event.requests, event.errors, event.waiting) == (2, 1, 0)
    totals = (await stats.query("1h", None, None))["totals"]
    assert (totals["requests"], totals["errors"], totals["tokens_out"]) == (2, 1, 9)
    assert totals["tokens_per_second"] == pytest.approx(100.0)
    await history.flush()  # nothing new: no event
    assert len([e for e in events if isinstance(e, TrafficRecorded)]) == 1
