"""Any OpenAI-compatible server joins the pool as an external node."""

from __future__ import annotations

import openai

from tests.conftest import RunningBalancer
from tests.fakes.fake_openai import FakeOpenAI
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually


async def test_an_external_server_serves_its_models_through_the_balancer(
    balancer: RunningBalancer,
) -> None:
    balancer.ctx.nodes.poll_interval = 0.2
    async with FakeOpenAI(["llama-3-8b"], api_key="their-key") as server:
        status, node = await balancer.post(
            "/v0/nodes/external",
            {"name": "vLLM box", "base_url": server.url + "/v1", "api_key": "their-key"},
        )
        assert status == 201 and node["kind"] == "external"
        api = openai.AsyncOpenAI(base_url=balancer.url + "/v1", api_key="x", max_retries=0)

        async def listed() -> list[str]:
            return [m.id for m in (await api.models.list()).data]

        assert await eventually(listed) == ["llama-3-8b"]
        answer = await api.chat.completions.create(
            model="llama-3-8b", messages=[{"role": "user", "content": "hi there"}]
        )
        assert answer.choices[0].message.content == "echo: hi there"
        stream = await api.chat.completions.create(
            model="llama-3-8b", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert text.strip() == "echo: a b c"
        assert server.calls == 2
        _, view = await balancer.get(f"/v0/nodes/{node['node_id']}")
        assert view["status"] == "online" and view["models"][0]["name"] == "llama-3-8b"
        # It is never asked to download anything: registrations do not reach it.
        status, _ = await balancer.post("/v0/models/register", {"model_id": "qwen3"})
        assert status == 201
    # The server went away: the node goes offline, its model leaves /v1/models.
    balancer.ctx.nodes.offline_after = 0.5

    async def offline() -> bool:
        _, v = await balancer.get(f"/v0/nodes/{node['node_id']}")
        return v["status"] == "offline"

    await eventually(offline, timeout=10)
    assert [m.id for m in (await api.models.list()).data] == []


async def test_bad_external_nodes_are_refused(balancer: RunningBalancer) -> None:
    for body in (
        {},
        {"name": "x", "base_url": "ftp://x"},
        {"name": "", "base_url": "http://x"},
        {"name": "x", "base_url": "http://x", "api_key": 5},
    ):
        status, answer = await balancer.post("/v0/nodes/external", body)
        assert status == 400
        assert_openai_error(answer)
