"""/v0/api-keys: what a key's name may be."""

from __future__ import annotations

import time

from tests.conftest import RunningBalancer
from tests.server.test_models_api import assert_openai_error


async def test_a_key_name_with_a_lone_surrogate_is_a_400_not_a_crash(
    balancer: RunningBalancer,
) -> None:
    status, answer = await balancer.post("/v0/api-keys", {"name": "ci \ud800"})
    assert status == 400
    assert_openai_error(answer)
    assert answer["error"]["param"] == "name"
    _, keys = await balancer.get("/v0/api-keys")
    assert keys == []


async def test_a_key_used_on_v1_shows_when_it_was_last_used(balancer: RunningBalancer) -> None:
    _, key = await balancer.post("/v0/api-keys", {"name": "editor"})
    _, keys = await balancer.get("/v0/api-keys")
    assert keys[0]["last_used_at"] is None  # never used yet
    before = time.time()
    auth = {"Authorization": f"Bearer {key['key']}"}
    status, _ = await balancer.get("/v1/models", headers=auth)
    assert status == 200
    _, keys = await balancer.get("/v0/api-keys")
    first_use = keys[0]["last_used_at"]
    assert first_use is not None and before <= first_use <= time.time()
    store = balancer.ctx.store
    assert store is not None
    [stored] = await store.list_api_keys()
    assert stored["last_used_at"] == first_use  # written to the database, survives a restart

    # Used again within the minute: the listing knows, the database is not written again.
    for _ in range(5):
        status, _ = await balancer.get("/v1/models", headers=auth)
        assert status == 200
    _, keys = await balancer.get("/v0/api-keys")
    assert keys[0]["last_used_at"] > first_use
    [stored] = await store.list_api_keys()
    assert stored["last_used_at"] == first_use

    # The admin token and a wrong key mark no key as used.
    _, other = await balancer.post("/v0/api-keys", {"name": "unused"})
    await balancer.get("/v1/models", headers=balancer.admin)
    await balancer.get("/v1/models", headers={"Authorization": "Bearer sk-llmlb-wrong"})
    _, keys = await balancer.get("/v0/api-keys")
    assert next(k for k in keys if k["id"] == other["id"])["last_used_at"] is None
