"""The local node's speed is measured from its own answers (real llama.cpp, in-process)."""

from __future__ import annotations

from typing import Any

import openai

from tests.conftest import RunningBalancer
from tests.node.conftest import register_ready
from tests.support.waiting import eventually


async def test_the_local_nodes_answers_measure_its_speed(served: RunningBalancer) -> None:
    name = await register_ready(served)
    api = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    body: dict[str, Any] = {
        "model": name,
        "messages": [{"role": "user", "content": "go on"}],
        "max_tokens": 256,
        "temperature": 0,
        "logit_bias": {"2": -100, "260": -100},  # no early end: 256 tokens (tens of ms here)
    }

    async def speed() -> float | None:
        _, nodes = await served.get("/v0/nodes")
        (node,) = nodes
        rate = node["speed"].get(name)
        return float(rate) if rate is not None else None

    # A stream with a usage block: the tokens after the first, over the time since it came.
    stream = await api.chat.completions.create(
        **body, stream=True, stream_options={"include_usage": True}
    )
    async for _ in stream:
        pass
    streamed = await eventually(speed)
    assert streamed > 0
    # A whole answer too: its tokens over its whole time.
    await api.chat.completions.create(**body)
    assert await speed() != streamed
