"""The request record: whatever model name a client sends, the history and metrics keep working."""

from __future__ import annotations

from tests.conftest import RunningBalancer


async def test_a_model_name_with_a_lone_surrogate_breaks_neither_history_nor_metrics(
    balancer: RunningBalancer,
) -> None:
    for path in ("/v1/chat/completions", "/v1/completions"):
        status, _ = await balancer.post(path, {"model": "\ud800" + "x" * 10_000, "prompt": "hi"})
        assert status == 404
    status, records = await balancer.get("/v0/requests")
    assert status == 200, records
    assert [r["status"] for r in records] == [404, 404]
    assert records[0]["model"] == "\\ud800" + "x" * 250  # the escape, and bounded
    assert len(records[0]["error"]) <= 1000
    async with balancer.http.get(balancer.url + "/metrics") as response:
        text = await response.text()
    assert response.status == 200
    assert 'model="-"' in text and "xxxx" not in text  # unknown names share one series
