"""GET /v0/models/hub/{id}/quantizations: what `<id>:<QUANT>` would register, per quantization."""

from __future__ import annotations

from tests.conftest import GGUF_BYTES, RunningBalancer
from tests.fakes.fake_hub import FakeHub


async def test_a_catalog_model_lists_its_repos_quantizations(
    fake_hub: FakeHub, balancer: RunningBalancer
) -> None:
    status, quants = await balancer.get("/v0/models/hub/qwen3/quantizations")
    assert status == 200
    assert [(q["quantization"], q["default"]) for q in quants] == [
        ("Q4_K_M", True),
        ("Q8_0", False),
    ]
    assert quants[1]["size_bytes"] == len(GGUF_BYTES) * 2
    # What each needs is scaled as the registration scales it: the same figure it registers.
    status, body = await balancer.post("/v0/models/register", {"model_id": "qwen3:Q8_0"})
    assert status == 201 and body["required_memory_bytes"] == quants[1]["required_memory_bytes"]


async def test_an_unknown_model_is_a_404_in_words(
    fake_hub: FakeHub, balancer: RunningBalancer
) -> None:
    status, body = await balancer.get("/v0/models/hub/nope/quantizations")
    assert status == 404 and "not in the catalog" in body["error"]["message"]
