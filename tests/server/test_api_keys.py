"""/v0/api-keys: what a key's name may be."""

from __future__ import annotations

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
