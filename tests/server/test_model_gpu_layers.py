"""Per-model GPU layers: `PATCH /v0/models/{name}` as an admin (and the GUI) uses it."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.events import ModelUpdated, decode
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.server.test_models_api import assert_openai_error
from tests.server.test_node_trust import beat, join


async def patch(
    balancer: RunningBalancer, name: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """PATCH JSON (the admin token unless `headers` says otherwise); (status, JSON body)."""
    async with balancer.http.patch(
        f"{balancer.url}/v0/models/{name}",
        json=body,
        headers=balancer.admin if headers is None else headers,
    ) as r:
        return r.status, await r.json(content_type=None)


async def test_each_setting_is_answered_listed_and_in_the_manifest(
    balancer: RunningBalancer,
) -> None:
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    _, [listed] = await balancer.get("/v0/models")
    assert listed["gpu_layers"] is None  # a new model follows each node's own setting
    for value in (12, -1, 0, 1000, None):
        status, entry = await patch(balancer, "qwen3", {"gpu_layers": value})
        assert status == 200, entry
        assert entry["id"] == "qwen3" and entry["gpu_layers"] == value
        assert isinstance(entry["nodes"], list)
        _, one = await balancer.get("/v0/models/qwen3")
        _, [listed] = await balancer.get("/v0/models")
        _, manifest = await balancer.get("/v0/models/registry/qwen3/manifest.json")
        assert one["gpu_layers"] == listed["gpu_layers"] == manifest["gpu_layers"] == value


async def test_a_change_is_pushed_to_the_gui(balancer: RunningBalancer) -> None:
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    async with balancer.http.ws_connect(balancer.url + "/v0/events", headers=balancer.admin) as ws:
        hello = await ws.receive_json(timeout=5)
        await patch(balancer, "qwen3", {"gpu_layers": 8})
        message = await ws.receive_json(timeout=5)
    assert message == {
        "type": "models.changed",
        "seq": hello["seq"] + 1,
        "data": {"name": "qwen3", "change": "updated"},
    }
    assert decode(message) == ModelUpdated("qwen3")


@pytest.mark.parametrize(
    "body",
    [
        {"gpu_layers": "12"},
        {"gpu_layers": 1.5},
        {"gpu_layers": 12.0},
        {"gpu_layers": True},
        {"gpu_layers": -2},
        {"gpu_layers": 1001},
        {"gpu_layers": 10**30},
        {"gpu_layers": [1]},
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    balancer: RunningBalancer, body: dict[str, Any]
) -> None:
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    await patch(balancer, "qwen3", {"gpu_layers": 4})
    status, answer = await patch(balancer, "qwen3", body)
    assert status == 400
    assert assert_openai_error(answer)["param"] == "gpu_layers"
    _, one = await balancer.get("/v0/models/qwen3")
    assert one["gpu_layers"] == 4


async def test_unknown_fields_missing_values_and_non_objects_are_refused(
    balancer: RunningBalancer,
) -> None:
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    status, answer = await patch(balancer, "qwen3", {"gpu_layers": 3, "n_ctx": 4096})
    assert status == 400 and assert_openai_error(answer)["param"] == "n_ctx"
    status, answer = await patch(balancer, "qwen3", {})
    assert status == 400 and assert_openai_error(answer)["param"] == "gpu_layers"
    status, answer = await patch(balancer, "qwen3", [3])
    assert status == 400
    assert_openai_error(answer)
    _, one = await balancer.get("/v0/models/qwen3")
    assert one["gpu_layers"] is None


async def test_an_unknown_model_is_404_and_a_stranger_is_401(balancer: RunningBalancer) -> None:
    status, answer = await patch(balancer, "nope", {"gpu_layers": 3})
    assert status == 404
    assert_openai_error(answer, "model_not_found")
    status, answer = await patch(balancer, "../etc", {"gpu_layers": 3})
    assert status in (400, 404)
    assert_openai_error(answer)
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    status, answer = await patch(balancer, "qwen3", {"gpu_layers": 3}, headers={})
    assert status == 401
    assert_openai_error(answer)
    node_token = {"X-Node-Token": "a node may read models, never change them"}
    status, _ = await patch(balancer, "qwen3", {"gpu_layers": 3}, headers=node_token)
    assert status == 401


async def test_the_value_survives_a_balancer_restart(balancer: RunningBalancer) -> None:
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    await patch(balancer, "qwen3", {"gpu_layers": 20})
    data_dir = balancer.ctx.settings.data_dir
    await balancer.ctx.stop()
    async with run_balancer(balancer_settings(data_dir)) as again:
        _, [listed] = await again.get("/v0/models")
        _, manifest = await again.get("/v0/models/registry/qwen3/manifest.json")
        assert listed["gpu_layers"] == manifest["gpu_layers"] == 20


async def test_a_slash_name_is_patched_whole(balancer: RunningBalancer, fake_hub: FakeHub) -> None:
    status, _ = await balancer.post("/v0/models/register", {"repo": "acme/one-gguf"})
    assert status == 201
    name = "acme/one-gguf"
    status, entry = await patch(balancer, name, {"gpu_layers": -1})
    assert status == 200 and entry["id"] == name and entry["gpu_layers"] == -1


async def test_a_node_that_missed_the_push_learns_of_the_change_from_its_heartbeat(
    balancer: RunningBalancer,
) -> None:
    """The sync notice may not reach a node; the version in every heartbeat answer heals it:
    a change of gpu_layers alone changes it, so the node syncs and takes the new value."""
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    _, joined = await join(balancer)
    await balancer.post(f"/v0/nodes/{joined['node_id']}/approve")

    async def version() -> str:
        status, answer = await beat(balancer, joined["node_token"], {"models": []})
        assert status == 200, answer
        return str(answer["manifest_version"])

    before = await version()
    await patch(balancer, "qwen3", {"gpu_layers": 6})
    changed = await version()
    assert changed != before
    await patch(balancer, "qwen3", {"gpu_layers": 6})  # the same value: nothing to sync
    assert await version() == changed
    await patch(balancer, "qwen3", {"gpu_layers": None})
    assert await version() == before
