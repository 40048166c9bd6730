"""What /v0/models/hub and /v0/models show of a download: the speed and time left while bytes
flow, and the reason and the next try while it waits to retry (the real node, the fake Hub)."""

from __future__ import annotations

import time
from typing import Any

from app.server.heartbeat import MAX_RETRY_IN, MAX_SPEED, Heartbeat
from tests.conftest import RunningBalancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import CHAT_REPO, hub_entry
from tests.support.waiting import eventually


async def register(b: RunningBalancer) -> str:
    status, body = await b.post("/v0/models/register", {"repo": CHAT_REPO})
    assert status == 201, body
    return str(body["name"])


async def node_report(b: RunningBalancer, name: str) -> dict[str, Any]:
    """The node's own entry for the model in /v0/models."""
    _, models = await b.get("/v0/models")
    model = next(m for m in models if m["id"] == name)
    return dict(model["nodes"][0])


async def test_a_throttled_download_shows_its_speed_and_time_left(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    size = len(tiny_models["chat"])
    model_hub.bytes_per_second = size / 6  # a download of ~6 s
    name = await register(served)

    async def flowing() -> dict[str, Any] | None:
        entry = await hub_entry(served, name)
        progress = entry and entry.get("download_progress")
        return progress if progress and progress.get("bytes_per_second") else None

    progress = await eventually(flowing, timeout=20, interval=0.05)
    # Measured on the node, near the throttle (a moving average: loose bounds on a busy box).
    assert size / 6 / 4 < progress["bytes_per_second"] < size / 6 * 4
    assert progress["seconds_left"] is not None and 0 < progress["seconds_left"] < 60
    assert progress["retry_at"] is None
    report = await node_report(served, name)
    assert report["bytes_per_second"] > 0 and report["retry_at"] is None


async def test_a_download_waiting_to_retry_says_why_and_when(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 20
    name = await register(served)

    async def started() -> bool:
        entry = await hub_entry(served, name)
        progress = entry and entry.get("download_progress")
        return bool(progress and progress["bytes_downloaded"] > 0)

    await eventually(started, timeout=20, interval=0.05)
    model_hub.mode = "error503"  # the Hub fails every try from now on
    model_hub.fail_after_bytes = 0  # and the running transfer is cut

    async def waiting() -> dict[str, Any] | None:
        entry = await hub_entry(served, name)
        progress = entry and entry.get("download_progress")
        why = (entry and entry.get("error")) or ""
        return entry if progress and progress.get("retry_at") and "503" in why else None

    try:
        entry = await eventually(waiting, timeout=30, interval=0.05)
        assert entry["status"] == "downloading" and "busy" in entry["error"]
        assert time.time() - 5 < entry["download_progress"]["retry_at"] < time.time() + 120
        assert entry["download_progress"]["bytes_per_second"] == 0
        report = await node_report(served, name)
        assert report["retry_at"] is not None and "503" in report["error"]
    finally:
        model_hub.mode, model_hub.fail_after_bytes = "ok", None


def test_a_nodes_speed_and_next_try_are_bounded_whatever_it_sends() -> None:
    """A hostile node cannot make the balancer show a negative speed, a retry in a year, or
    fail on junk: the speed is capped, the wait too, anything else is dropped."""
    junk: list[Any] = [None, True, -1, -1e9, 1e308, float("nan"), float("inf"), "5", [1], 10**400]
    for value in junk:
        beat = Heartbeat.parse(
            {"models": [{"name": "m", "bytes_per_second": value, "retry_in": value}]}
        )
        report = beat.models[0]
        assert 0 <= report.bytes_per_second <= MAX_SPEED
        assert report.retry_at is None or report.retry_at <= time.time() + MAX_RETRY_IN
    beat = Heartbeat.parse({"models": [{"name": "m", "bytes_per_second": 5000, "retry_in": 20}]})
    assert beat.models[0].bytes_per_second == 5000
    retry_at = beat.models[0].retry_at
    assert retry_at is not None and abs(retry_at - (time.time() + 20)) < 5
