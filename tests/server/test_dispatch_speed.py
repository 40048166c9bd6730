"""Dispatch knows the device: the node that generates a model fastest gets its requests, while
it has a free slot; its speed is measured from real answers and shown in `GET /v0/nodes`."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from app.server.dispatch import Dispatcher
from app.server.speed import ALPHA, MAX_MODELS, MAX_RATE, Speed, completion_tokens
from tests.conftest import RunningBalancer
from tests.server.test_dispatch import registry
from tests.support.waiting import eventually

MODEL = "shared-model"
TOKENS = 8  # tokens in every answer of the servers below


class Generator:
    """An OpenAI-compatible server generating TOKENS tokens at `per_token` seconds each, its
    answers with a usage block; a request saying "hold" waits until `release` is set."""

    def __init__(self, per_token: float) -> None:
        self.per_token = per_token
        self.calls = 0
        self.holding = 0
        self.release = asyncio.Event()
        self.url = ""

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        if body["messages"][-1]["content"] == "hold":
            self.holding += 1
            await self.release.wait()
        usage = {"prompt_tokens": 5, "completion_tokens": TOKENS, "total_tokens": 5 + TOKENS}
        if not body.get("stream"):
            await asyncio.sleep(self.per_token * TOKENS)
            message = {"role": "assistant", "content": "tok " * TOKENS}
            return web.json_response(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": MODEL,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(TOKENS):
            await asyncio.sleep(self.per_token)
            delta = {"index": 0, "delta": {"content": "tok "}, "finish_reason": None}
            await response.write(_event({"object": "chat.completion.chunk", "choices": [delta]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(
                _event({"object": "chat.completion.chunk", "choices": [], "usage": usage})
            )
        await response.write(b"data: [DONE]\n\n")
        return response


def _event(data: object) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


@asynccontextmanager
async def serving(per_token: float) -> AsyncIterator[Generator]:
    """A Generator on 127.0.0.1."""
    server = Generator(per_token)
    app = web.Application()
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/chat/completions", server.chat)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


async def test_the_fast_node_gets_the_work_while_it_has_a_free_slot(
    balancer: RunningBalancer,
) -> None:
    balancer.ctx.external.poll_interval = 0.2
    async with serving(per_token=0.04) as slow, serving(per_token=0.004) as fast:
        for server, name, slots in ((slow, "cpu box", 4), (fast, "gpu box", 1)):
            status, node = await balancer.post(
                "/v0/nodes/external", {"name": name, "base_url": server.url, "slots": slots}
            )
            assert status == 201, node

        async def both_online() -> bool:
            _, nodes = await balancer.get("/v0/nodes")
            return sum(n["status"] == "online" for n in nodes) == 2

        await eventually(both_online)
        api = openai.AsyncOpenAI(base_url=balancer.url + "/v1", api_key="x", max_retries=0)

        async def ask(i: int, text: str = "") -> None:
            messages: list[ChatCompletionMessageParam] = [
                {"role": "user", "content": text or f"question {i}"}
            ]
            if i % 2:
                await api.chat.completions.create(model=MODEL, messages=messages)
                return
            stream = await api.chat.completions.create(
                model=MODEL,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in stream:
                pass

        # Neither is measured yet: each is tried, and its answers place it.
        for i in range(4):
            await ask(i)
        assert slow.calls >= 1 and fast.calls >= 1

        async def measured() -> dict[str, float]:
            _, nodes = await balancer.get("/v0/nodes")
            speed = {n["name"]: n["speed"].get(MODEL) for n in nodes}
            return speed if None not in speed.values() else {}

        speed = await eventually(measured)
        assert speed["gpu box"] > 3 * speed["cpu box"] > 0
        # The same figures are Prometheus gauges.
        async with balancer.http.get(balancer.url + "/metrics", headers=balancer.admin) as r:
            gauges = [
                line
                for line in (await r.text()).splitlines()
                if line.startswith("llmlb_node_model_tokens_per_second{")
            ]
        assert len(gauges) == 2 and all(f'model="{MODEL}"' in g for g in gauges)

        # Idle: every request goes to the fast node (streamed or not, new conversations).
        before = slow.calls, fast.calls
        for i in range(6):
            await ask(10 + i)
        assert (slow.calls, fast.calls) == (before[0], before[1] + 6)

        # The fast node's one slot is taken: the requests go on to the slow node, not into a
        # queue behind the fast one.
        held = asyncio.create_task(ask(21, "hold"))
        await eventually(lambda: fast.holding == 1)
        before = slow.calls, fast.calls
        await asyncio.wait_for(asyncio.gather(*(ask(30 + i) for i in range(3))), 10)
        assert (slow.calls, fast.calls) == (before[0] + 3, before[1])
        fast.release.set()
        await asyncio.wait_for(held, 10)

        # Free again: the fast node takes the next one.
        await ask(40)
        assert fast.calls == before[1] + 1


def test_speed_is_a_moving_average_of_real_answers() -> None:
    speed = Speed()
    assert speed.of("m") is None
    assert speed.observe("m", 100, 1.0) == 100.0  # the first answer sets it
    assert speed.observe("m", 20, 1.0) == (1 - ALPHA) * 100 + ALPHA * 20
    assert speed.observe("other", 30, 0.5) == 60.0  # each model on its own
    assert speed.public() == {"m": round((1 - ALPHA) * 100 + ALPHA * 20, 1), "other": 60.0}
    speed.forget("other")
    assert speed.of("other") is None and speed.of("m") is not None
    speed.clear()
    assert speed.public() == {}


def test_hostile_figures_never_move_the_speed() -> None:
    speed = Speed()
    speed.observe("m", 50, 1.0)
    for tokens, seconds in (
        (0, 1.0),  # no tokens
        (-5, 1.0),
        (10, 0.0),  # no time
        (10, -1.0),
        (10, 0.001),  # too short to mean anything
        (10, math.nan),
        (10, math.inf),
        (True, 1.0),  # not numbers
        ("10", 1.0),
        (None, 1.0),
        (10.5, 1.0),
        (10, "1"),
        (10**15, 1.0),  # absurd
        (int(MAX_RATE * 10), 1.0),
    ):
        assert speed.observe("m", tokens, seconds) is None, (tokens, seconds)
    assert speed.of("m") == 50.0


def test_the_record_is_bounded() -> None:
    speed = Speed()
    for i in range(MAX_MODELS + 50):
        speed.observe(f"model-{i}", 10, 1.0)
    assert len(speed.public()) == MAX_MODELS
    assert speed.of("model-0") is None and speed.of(f"model-{MAX_MODELS + 49}") == 10.0


def test_the_usage_block_is_read_from_the_end_of_an_answer() -> None:
    whole = json.dumps({"choices": [], "usage": {"completion_tokens": 42}}).encode()
    assert completion_tokens(whole) == 42
    # A stream's usage event and [DONE] in two buffers, the key split across them too.
    usage = _event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 17}})
    assert completion_tokens(usage[:40], usage[40:] + b"data: [DONE]\n\n") == 17
    assert completion_tokens(usage, b"data: [DONE]\n\n") == 17
    # The generated text cannot fake it: quotes inside a JSON string are escaped.
    text = _event({"choices": [{"delta": {"content": '"completion_tokens": 99999'}}]})
    assert completion_tokens(text, b"data: [DONE]\n\n") is None
    for bad in (b'"completion_tokens": null', b'"completion_tokens": 1.5e9', b"", b"[DONE]"):
        assert completion_tokens(bad) is None, bad
    # Only the end is read: a huge answer costs the same.
    assert completion_tokens(b" " * 10_000_000 + whole) == 42


async def test_the_fastest_free_node_is_chosen_and_a_full_one_passed_over() -> None:
    reg = registry("cpu", "gpu", slots=2)
    reg.nodes["cpu"].speed.observe("m", 10, 1.0)
    reg.nodes["gpu"].speed.observe("m", 100, 1.0)
    d = Dispatcher(reg)
    assert [(await d.acquire("m", set())).id for _ in range(4)] == ["gpu", "gpu", "cpu", "cpu"]


async def test_an_unmeasured_node_is_tried_and_equal_nodes_share() -> None:
    reg = registry("cpu", "gpu", "new", slots=4)
    reg.nodes["cpu"].speed.observe("m", 10, 1.0)
    reg.nodes["gpu"].speed.observe("m", 100, 1.0)
    reg.nodes["gpu"].ewma_ms = 5.0  # it has answered before; the new one has not
    d = Dispatcher(reg)
    picked = [(await d.acquire("m", set())).id for _ in range(4)]
    assert sorted(picked) == ["gpu", "gpu", "new", "new"]  # the slow one waits its turn
    reg.nodes["new"].speed.observe("m", 90, 1.0)  # about as fast: they go on sharing
    assert {(await d.acquire("m", set())).id for _ in range(4)} == {"gpu", "new"}


async def test_a_conversation_stays_on_its_node_unless_that_is_much_slower() -> None:
    reg = registry("a", "b", slots=4)
    reg.nodes["a"].speed.observe("m", 100, 1.0)
    reg.nodes["b"].speed.observe("m", 60, 1.0)
    d = Dispatcher(reg)
    d.affinity["k"] = "b"
    node = await d.acquire("m", set(), "k")
    assert node.id == "b"  # its prompt cache is worth a somewhat slower node
    d.release(node)
    for _ in range(5):  # now much slower
        reg.nodes["b"].speed.observe("m", 10, 1.0)
    assert (await d.acquire("m", set(), "k")).id == "a"


async def test_a_restarted_node_is_measured_afresh(balancer: RunningBalancer) -> None:
    """A node registers as it starts: it may have been rebuilt for its GPU since."""
    body = {"url": "http://127.0.0.1:9", "name": "box"}
    status, joined = await balancer.post("/v0/nodes", body)
    assert status == 201, joined
    node_id = joined["node_id"]
    balancer.ctx.nodes.nodes[node_id].speed.observe(MODEL, 30, 1.0)
    _, node = await balancer.get(f"/v0/nodes/{node_id}")
    assert node["speed"] == {MODEL: 30.0}
    again = {**body, "node_id": node_id, "node_token": joined["node_token"]}
    status, _ = await balancer.post("/v0/nodes", again)
    assert status == 201
    _, node = await balancer.get(f"/v0/nodes/{node_id}")
    assert node["speed"] == {}


def test_a_deleted_model_is_forgotten() -> None:
    reg = registry("a")
    reg.nodes["a"].speed.observe("m", 30, 1.0)
    reg.forget_model("m")
    assert reg.nodes["a"].speed.public() == {}
