"""A node's current run (uptime counts from its latest registration) and this computer's node,
which cannot be deleted while it runs."""

from __future__ import annotations

from tests.conftest import RunningBalancer
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually


async def test_uptime_starts_at_the_latest_registration(balancer: RunningBalancer) -> None:
    body = {"url": "http://127.0.0.1:9", "name": "desk"}
    status, first = await balancer.post("/v0/nodes", body)
    assert status == 201
    _, view = await balancer.get(f"/v0/nodes/{first['node_id']}")
    assert view["registered_at"] == view["last_seen"]
    assert view["registered_at"] >= view["created_at"]

    async def registered_again() -> dict[str, float]:
        again = {**body, "node_id": first["node_id"], "node_token": first["node_token"]}
        status, answer = await balancer.post("/v0/nodes", again)
        assert status == 201 and answer["node_id"] == first["node_id"]  # the same node
        _, later = await balancer.get(f"/v0/nodes/{first['node_id']}")
        return later if later["registered_at"] > view["registered_at"] else {}

    later = await eventually(registered_again)  # the node restarted: a new run
    assert later["created_at"] == view["created_at"]  # its first registration stays known


async def test_this_computers_node_is_not_deleted_while_it_runs(balancer: RunningBalancer) -> None:
    local = {"url": "http://127.0.0.1:9", "name": "this computer", "local": True}
    status, node = await balancer.post("/v0/nodes", local)
    assert status == 201
    status, error = await balancer.delete(f"/v0/nodes/{node['node_id']}")
    assert status == 409
    assert_openai_error(error, "local_node")
    assert "cannot be deleted while llmlb runs" in error["error"]["message"]
    status, _ = await balancer.get(f"/v0/nodes/{node['node_id']}")
    assert status == 200
    # Any other node can be deleted.
    status, other = await balancer.post("/v0/nodes", {"url": "http://127.0.0.1:10", "name": "b"})
    status, _ = await balancer.delete(f"/v0/nodes/{other['node_id']}")
    assert status == 204
