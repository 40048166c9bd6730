"""A node's devices, as its heartbeat reports them, reach `GET /v0/nodes` and `/metrics`
(bounded and cleaned: a node's figures are hostile input like any other)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningBalancer
from tests.server.test_node_trust import beat, join, node

GPU: dict[str, Any] = {
    "name": "NVIDIA GeForce RTX 4090 (CUDA0)",
    "backend": "cuda",
    "total_bytes": 24 * 10**9,
    "free_bytes": 18 * 10**9,
    "utilization": 0.35,
}


async def scrape(b: RunningBalancer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with b.http.get(b.url + "/metrics", headers=b.admin) as r:
        assert r.status == 200
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_device_memory_reaches_the_node_list_and_prometheus(
    balancer: RunningBalancer,
) -> None:
    _, joined = await join(balancer)
    node_id, token = joined["node_id"], joined["node_token"]
    await balancer.post(f"/v0/nodes/{node_id}/approve")
    system = {"memory_total_bytes": 64 * 10**9, "memory_available_bytes": 40 * 10**9}
    status, _ = await beat(balancer, token, {"models": [], "system": system, "devices": [GPU]})
    assert status == 200
    assert (await node(balancer, node_id))["metrics"]["devices"] == [GPU]

    samples = await scrape(balancer)
    labels = (("backend", "cuda"), ("device", str(GPU["name"])), ("node", str(node_id)))
    assert samples[("llmlb_node_device_memory_total_bytes", labels)] == 24e9
    assert samples[("llmlb_node_device_memory_free_bytes", labels)] == 18e9
    assert samples[("llmlb_node_device_utilization_ratio", labels)] == 0.35
    assert samples[("llmlb_node_memory_available_bytes", (("node", node_id),))] == 40e9

    # The device is gone from the next heartbeat: gone from the gauges too.
    await beat(balancer, token, {"models": [], "system": system, "devices": []})
    samples = await scrape(balancer)
    assert not any(name.startswith("llmlb_node_device") for name, _ in samples)


async def test_hostile_device_figures_are_bounded(balancer: RunningBalancer) -> None:
    _, joined = await join(balancer)
    node_id, token = joined["node_id"], joined["node_token"]
    hostile = [
        {"name": "x" * 10_000, "backend": "b" * 500, "total_bytes": -5, "free_bytes": "lots"},
        {"backend": "cuda"},  # no name: dropped
        "not a device",
        *({**GPU, "name": f"GPU{i}"} for i in range(500)),
    ]
    status, _ = await beat(balancer, token, {"models": [], "devices": hostile})
    assert status == 200
    devices = (await node(balancer, node_id))["metrics"]["devices"]
    assert len(devices) <= 64
    first = devices[0]
    assert len(first["name"]) <= 200 and len(first["backend"]) <= 32
    assert first["total_bytes"] == 0 and first["free_bytes"] == 0
    assert all(isinstance(d["total_bytes"], int) for d in devices)


async def test_a_nodes_disk_space_reaches_the_node_list_bounded(balancer: RunningBalancer) -> None:
    """The Overview's "disk nearly full" reads it: a node's figures, never negative, free never
    more than total, and both or neither."""
    _, joined = await join(balancer)
    node_id, token = joined["node_id"], joined["node_token"]
    disk = {"disk_total_bytes": 500 * 10**9, "disk_free_bytes": 20 * 10**9}
    await beat(balancer, token, {"models": [], "system": disk})
    assert (await node(balancer, node_id))["metrics"]["system"] == disk

    for hostile, shown in (
        (
            {"disk_total_bytes": -1, "disk_free_bytes": "lots"},
            {"disk_total_bytes": 0, "disk_free_bytes": 0},
        ),
        (
            {"disk_total_bytes": 10, "disk_free_bytes": 10**30},
            {"disk_total_bytes": 10, "disk_free_bytes": 10},
        ),
        ({"disk_free_bytes": 5}, {}),  # free without total says nothing
    ):
        status, _ = await beat(balancer, token, {"models": [], "system": hostile})
        assert status == 200
        assert (await node(balancer, node_id))["metrics"]["system"] == shown
