"""GET /metrics, as Prometheus parses it: tokens in and out and tokens/s from real traffic,
downloads in progress and model loads from heartbeats, labelled by model and node, with no
series for names no model has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CHAT_REPO, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import register_ready, served
from tests.server.test_node_trust import beat, join
from tests.support.waiting import eventually

__all__ = ["served"]  # the fixture this module uses

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(b: RunningBalancer) -> tuple[set[str], Samples]:
    """The families' names and every sample, keyed by (name, sorted labels)."""
    async with b.http.get(b.url + "/metrics", headers=b.admin) as r:
        assert r.status == 200
        text = await r.text()
    families = list(text_string_to_metric_families(text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return {f.name for f in families}, samples


@pytest.fixture
async def hubbed(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A balancer that can register models from the fake Hub, with no node of its own."""
    async with run_balancer(balancer_settings(tmp_path / "data")) as b:
        yield b


async def test_tokens_and_speed_of_real_traffic(served: RunningBalancer) -> None:
    name = await register_ready(served)
    client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    chat: Any = [{"role": "user", "content": "hello"}]
    for _ in range(2):
        await client.chat.completions.create(model=name, messages=chat, max_tokens=5)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="made-up", messages=chat)
    await client.close()
    _, records = await served.get("/v0/requests")  # also flushes them into the stats
    answered = [r for r in records if r["status"] == 200]
    node = answered[0]["node_id"]

    names, samples = await scrape(served)
    assert {
        "llmlb_tokens_in",
        "llmlb_tokens_out",
        "llmlb_tokens_per_second",
        "llmlb_node_downloads_in_progress",
        "llmlb_node_download_downloaded_bytes",
        "llmlb_node_download_total_bytes",
        "llmlb_node_model_loads",
        "llmlb_node_model_unloads",
    } <= names
    labels = (("model", name), ("node", node))
    assert samples[("llmlb_tokens_in_total", labels)] == sum(r["tokens_in"] for r in answered)
    assert samples[("llmlb_tokens_out_total", labels)] == sum(r["tokens_out"] for r in answered)
    speed = sum(r["tokens_out"] for r in answered) / sum(r["generation_ms"] for r in answered)
    rate = samples[("llmlb_tokens_per_second", (("model", name),))]
    assert rate == pytest.approx(speed * 1000, rel=1e-6)
    assert not any("made-up" in dict(labels).values() for _, labels in samples)
    assert samples[("llmlb_node_downloads_in_progress", (("node", node),))] == 0

    # The node loaded the model for the first request: its next heartbeat says so.
    async def loaded() -> float | None:
        return (await scrape(served))[1].get(
            ("llmlb_node_model_loads_total", (("model", name), ("node", node)))
        )

    assert await eventually(loaded) == 1


async def test_downloads_and_loads_from_heartbeats(hubbed: RunningBalancer) -> None:
    status, registered = await hubbed.post("/v0/models/register", {"repo": CHAT_REPO})
    assert status == 201, registered
    name = registered["name"]
    _, joined = await join(hubbed)
    node, token = joined["node_id"], joined["node_token"]
    await hubbed.post(f"/v0/nodes/{node}/approve")
    downloading = {"name": name, "state": "downloading", "downloaded_bytes": 30, "total_bytes": 100}
    for loaded in ([], [name, "not-registered"], ["not-registered"], [name]):
        status, _ = await beat(hubbed, token, {"models": [downloading], "loaded_models": loaded})
        assert status == 200

    _, samples = await scrape(hubbed)
    labels = (("model", name), ("node", node))
    assert samples[("llmlb_node_downloads_in_progress", (("node", node),))] == 1
    assert samples[("llmlb_node_download_downloaded_bytes", labels)] == 30
    assert samples[("llmlb_node_download_total_bytes", labels)] == 100
    assert samples[("llmlb_node_model_loads_total", labels)] == 2
    assert samples[("llmlb_node_model_unloads_total", labels)] == 1
    assert not any("not-registered" in dict(labels).values() for _, labels in samples)
