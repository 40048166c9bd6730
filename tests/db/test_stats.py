"""The time-series tables: buckets add up when written twice, minutes roll into hours once and
only once, and an older database gains the tables without losing its history."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.db.migrations import LATEST
from app.db.stats import HOUR, MINUTE, NodeCounts, StatsStore, TrafficCounts
from app.db.store import Store

DAY = 24 * HOUR
T0 = 1_800_000_000 - 1_800_000_000 % DAY  # a midnight, so hours and days line up


@pytest.fixture
async def stats(tmp_path: Path) -> AsyncIterator[StatsStore]:
    store = Store(tmp_path / "s.db")
    await store.open()
    yield StatsStore(store)
    await store.close()


def traffic(requests: int, ttft: dict[int, int] | None = None) -> TrafficCounts:
    return TrafficCounts(
        requests=requests,
        errors=1,
        tokens_in=10 * requests,
        tokens_out=20 * requests,
        gen_tokens=20 * requests,
        gen_ms=100.0 * requests,
        ttft=dict(ttft or {30: requests}),
        latency={40: requests},
    )


async def read(
    stats: StatsStore, step: int, since: float = 0
) -> dict[tuple[int, str, str], TrafficCounts]:
    rows = await stats.run(lambda: list(stats.traffic_sync(step, since, None, None)))
    return {(at, m, n): c for at, m, n, c in rows}


async def test_a_bucket_written_twice_adds_up(stats: StatsStore) -> None:
    key = (T0, "m", "n1")
    await stats.run(stats.save_sync, MINUTE, {key: traffic(2, {30: 2})}, {})
    await stats.run(stats.save_sync, MINUTE, {key: traffic(3, {30: 1, 31: 2})}, {})
    [(at, model, node, counts)] = await stats.run(
        lambda: list(stats.traffic_sync(MINUTE, T0, "m", None))
    )
    assert (at, model, node) == key
    assert counts.requests == 5 and counts.errors == 2
    assert counts.tokens_in == 50 and counts.tokens_out == 100 and counts.gen_ms == 500.0
    assert counts.ttft == {30: 3, 31: 2} and counts.latency == {40: 5}
    # The filters select by model and node.
    assert await stats.run(lambda: list(stats.traffic_sync(MINUTE, T0, "other", None))) == []
    assert await stats.run(lambda: list(stats.traffic_sync(MINUTE, T0, None, "n2"))) == []


async def test_minutes_roll_into_hours_once(stats: StatsStore) -> None:
    minutes = {
        (T0 + 0 * MINUTE, "m", "n1"): traffic(1, {10: 1}),
        (T0 + 59 * MINUTE, "m", "n1"): traffic(2, {20: 2}),
        (T0 + HOUR, "m", "n1"): traffic(4),  # the next hour
        (T0 + 25 * HOUR, "m", "n1"): traffic(8),  # recent: stays a minute
    }
    beat = NodeCounts(beats=2, cpu_sum=1.0, cpu_n=2)
    await stats.run(stats.save_sync, MINUTE, minutes, {(T0, "n1"): beat, (T0 + 60, "n1"): beat})
    cutoff = T0 + 2 * HOUR
    moved = await stats.run(stats.roll_up_sync, cutoff, T0 - 7 * DAY)
    assert moved == 5

    hours = await read(stats, HOUR)
    assert set(hours) == {(T0, "m", "n1"), (T0 + HOUR, "m", "n1")}
    first = hours[(T0, "m", "n1")]
    assert first.requests == 3 and first.errors == 2 and first.tokens_out == 60
    assert first.ttft == {10: 1, 20: 2}  # the histograms merge bin by bin
    assert set(await read(stats, MINUTE)) == {(T0 + 25 * HOUR, "m", "n1")}
    [(_, node, sample)] = await stats.run(lambda: list(stats.samples_sync(HOUR, 0, None)))
    assert node == "n1" and sample.beats == 4 and sample.cpu_sum == 2.0 and sample.cpu_n == 4

    # Again (the next hour's run, or a run after a crash): nothing doubles.
    assert await stats.run(stats.roll_up_sync, cutoff, T0 - 7 * DAY) == 0
    assert (await read(stats, HOUR))[(T0, "m", "n1")].requests == 3
    # A late minute of an hour already rolled merges into that hour.
    await stats.run(stats.save_sync, MINUTE, {(T0 + 5 * MINUTE, "m", "n1"): traffic(1)}, {})
    await stats.run(stats.roll_up_sync, cutoff, T0 - 7 * DAY)
    assert (await read(stats, HOUR))[(T0, "m", "n1")].requests == 4

    # Hours older than the week are dropped.
    await stats.run(stats.roll_up_sync, cutoff, T0 + HOUR)
    assert set(await read(stats, HOUR)) == {(T0 + HOUR, "m", "n1")}


async def test_a_failed_roll_up_leaves_the_minutes(stats: StatsStore) -> None:
    await stats.run(stats.save_sync, MINUTE, {(T0, "m", "n1"): traffic(1)}, {})

    def crash() -> None:
        stats.roll_up_sync(T0 + HOUR, 0)
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        await stats.run(crash)
    assert set(await read(stats, MINUTE)) == {(T0, "m", "n1")}
    assert await read(stats, HOUR) == {}


async def test_an_older_database_gains_the_tables_and_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = Store(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:  # as schema 8 left it, with a request recorded
        conn.execute("DROP TABLE stats_traffic")
        conn.execute("DROP TABLE stats_nodes")
        conn.execute(
            "INSERT INTO requests (at, endpoint, model, status, stream, duration_ms) "
            "VALUES (1, '/v1/chat/completions', 'm', 200, 0, 5)"
        )
        conn.execute("PRAGMA user_version = 8")
    again = Store(path)
    await again.open()
    stats = StatsStore(again)
    await stats.run(stats.save_sync, MINUTE, {(T0, "m", ""): traffic(1)}, {})
    assert len(await read(stats, MINUTE)) == 1
    await again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 9
        assert conn.execute("SELECT model FROM requests").fetchall() == [("m",)]
