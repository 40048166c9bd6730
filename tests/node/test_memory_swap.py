"""Models swapped by memory: a model that does not fit beside the loaded ones unloads the least
recently used idle one, waits for a busy one to finish, and a model that failed to load is
tried again on its next request or on Retry.

Memory is made short for real: the node may give its models 0.5 GB (LLMLB_MODEL_MEMORY), and
each tiny model's file is stretched (sparse) to 0.3 GB, so the planner finds that one fits and
two do not."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.node.agent import NodeAgent
from tests.conftest import ENDLESS_REPO, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_REPO, hub_entry, register_ready
from tests.node.test_node_errors import error_of
from tests.support.waiting import eventually

STRETCHED = 300_000_000  # bytes each model file takes in the plan: one fits 0.5 GB, two do not


@pytest.fixture
async def short(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A balancer whose local node may give its models 0.5 GB of RAM in all."""
    settings = balancer_settings(
        tmp_path / "data",
        local_node=True,
        context_size=4096,
        idle_unload_ttl=600.0,
        model_memory=0.5,
    )
    async with run_balancer(settings) as b:
        yield b


def node(b: RunningBalancer) -> NodeAgent:
    assert b.ctx.local_node is not None
    return b.ctx.local_node


async def stretched(b: RunningBalancer, repo: str) -> str:
    """Register `repo`, wait until it is ready, and stretch its file (sparse) on the node."""
    name = await register_ready(b, repo)
    path = node(b).library.model_path(name)
    assert path is not None
    os.truncate(path, STRETCHED)
    return name


def chat(name: str, **extra: Any) -> dict[str, Any]:
    """A short chat request for `name`."""
    messages = [{"role": "user", "content": "hi"}]
    return {"model": name, "messages": messages, "max_tokens": 4, **extra}


async def test_a_model_that_does_not_fit_unloads_the_idle_one(short: RunningBalancer) -> None:
    a = await stretched(short, CHAT_REPO)
    b = await stretched(short, ENDLESS_REPO)
    status, body = await short.post("/v1/chat/completions", chat(a))
    assert status == 200, body
    assert node(short).engines.loaded() == [a]
    status, body = await short.post("/v1/chat/completions", chat(b))
    assert status == 200, body  # A was idle: unloaded to make room
    assert node(short).engines.loaded() == [b]
    status, body = await short.post("/v1/chat/completions", chat(a))
    assert status == 200, body  # and back again
    assert node(short).engines.loaded() == [a]


async def answered_at(b: RunningBalancer, body: dict[str, Any]) -> tuple[int, Any, float]:
    """POST a chat request: (status, body, when the answer came)."""
    status, answer = await b.post("/v1/chat/completions", body)
    return status, answer, time.monotonic()


async def test_a_model_waits_for_a_busy_one_to_finish(
    short: RunningBalancer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.node.models")
    endless = await stretched(short, ENDLESS_REPO)
    other = await stretched(short, CHAT_REPO)
    body = chat(endless, max_tokens=3000, stream=True)
    async with short.http.post(
        short.url + "/v1/chat/completions", json=body, headers=short.admin
    ) as streaming:
        assert streaming.status == 200
        await streaming.content.readline()  # the stream is under way: the model is busy
        waiting = asyncio.create_task(answered_at(short, chat(other)))
        # The other model's request waits in the queue for the stream, not failing at once.
        await eventually(lambda: "waits for" in caplog.text)
        finish = None
        async for line in streaming.content:
            text = line.decode().strip()
            if text.startswith("data: {"):
                choice = json.loads(text[6:])["choices"]
                finish = (choice[0].get("finish_reason") if choice else None) or finish
        ended = time.monotonic()
    assert finish == "length"  # the stream ran to its end, never cut for the other model
    status, answer, at = await waiting
    assert status == 200, answer
    assert at >= ended  # answered once the stream had ended (it runs ~8 s here)
    assert node(short).engines.loaded() == [other]


async def test_a_model_gives_up_after_the_queue_wait_and_says_why(short: RunningBalancer) -> None:
    endless = await stretched(short, ENDLESS_REPO)
    other = await stretched(short, CHAT_REPO)
    node(short).models.queue_wait = 0  # the busy model is never waited for
    body = chat(endless, max_tokens=3000, stream=True)
    async with short.http.post(
        short.url + "/v1/chat/completions", json=body, headers=short.admin
    ) as streaming:
        await streaming.content.readline()
        status, answer = await short.post("/v1/chat/completions", chat(other))
        await streaming.read()
    assert status == 503, answer
    assert answer["error"]["code"] == "insufficient_memory"
    message = answer["error"]["message"]
    assert message.startswith(f"not enough memory to load {other}: ")
    assert message.endswith(f"waited 0 s for {endless} to finish answering so it could be unloaded")
    assert node(short).engines.loaded() == [endless]  # never unloaded under its stream


async def test_two_models_asked_at_once_load_in_turn(short: RunningBalancer) -> None:
    a = await stretched(short, CHAT_REPO)
    b = await stretched(short, ENDLESS_REPO)
    answers = await asyncio.gather(
        short.post("/v1/chat/completions", chat(a)), short.post("/v1/chat/completions", chat(b))
    )
    assert [status for status, _ in answers] == [200, 200], answers
    # One load decision at a time: never both in memory beyond the node's limit.
    assert len(node(short).engines.loaded()) == 1


async def test_a_model_that_cannot_fit_even_alone_says_so(short: RunningBalancer) -> None:
    a = await stretched(short, CHAT_REPO)
    path = node(short).library.model_path(a)
    assert path is not None
    os.truncate(path, 2 * STRETCHED)  # 0.6 GB: more than the node may give all its models
    status, body = await short.post("/v1/chat/completions", chat(a))
    assert status == 503, body
    assert body["error"]["code"] == "insufficient_memory"
    assert body["error"]["message"].startswith(f"not enough memory to load {a}: ")


def alien(tiny_models: dict[str, bytes]) -> bytes:
    """The tiny chat model as an architecture llama.cpp does not know (same length)."""
    key = b"general.architecture"
    at = tiny_models["chat"].index(key) + len(key)
    data = bytearray(tiny_models["chat"])
    data[at : at + 20] = data[at : at + 20].replace(b"llama", b"llamo", 1)
    return bytes(data)


async def failed_load(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> str:
    """A model whose (whole, well-formed) file llama.cpp refused: in error after a request."""
    model_hub.add(FakeRepo("bad/alien-gguf", {"alien-Q4_K_M.gguf": alien(tiny_models)}))
    name = "bad/alien-gguf"
    await served.post("/v0/models/register", {"repo": name})

    async def ready() -> bool:
        entry = await hub_entry(served, name)
        return entry is not None and entry.get("lifecycle_status") == "ready"

    await eventually(ready, timeout=20)
    status, body = await served.post("/v1/chat/completions", chat(name))
    assert status == 500, body
    assert "llama.cpp could not load" in await error_of(served, name)
    return name


def fix(served: RunningBalancer, name: str, tiny_models: dict[str, bytes]) -> None:
    path = node(served).library.model_path(name)
    assert path is not None
    path.write_bytes(tiny_models["chat"])


async def lifecycle(served: RunningBalancer, name: str) -> str | None:
    entry = await hub_entry(served, name)
    return entry.get("lifecycle_status") if entry else None


async def test_a_failed_load_is_tried_again_on_the_next_request(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    name = await failed_load(served, model_hub, tiny_models)
    status, body = await served.post("/v1/chat/completions", chat(name))
    assert status == 500 and "llamo" in body["error"]["message"]  # tried again: same reason
    fix(served, name, tiny_models)
    status, body = await served.post("/v1/chat/completions", chat(name))
    assert status == 200, body
    await eventually(lambda: _is(served, name, "ready"))


async def _is(served: RunningBalancer, name: str, state: str) -> bool:
    return await lifecycle(served, name) == state


async def test_retry_clears_a_failed_load(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    name = await failed_load(served, model_hub, tiny_models)
    fix(served, name, tiny_models)
    status, body = await served.post(f"/v0/models/{name}/retry")
    assert status == 200, body
    assert body == {"name": name, "retried_nodes": [node(served).node_id]}
    await eventually(lambda: _is(served, name, "ready"))
    status, body = await served.post("/v1/chat/completions", chat(name))
    assert status == 200, body
    # A model in error nowhere: nothing to retry; an unknown one: 404; only the admin may.
    status, body = await served.post(f"/v0/models/{name}/retry")
    assert status == 200 and body["retried_nodes"] == []
    status, body = await served.post("/v0/models/no/such-model/retry")
    assert status == 404 and body["error"]["code"] == "model_not_found"
    status, body = await served.post(f"/v0/models/{name}/retry", headers={})
    assert status == 401


async def test_retry_fetches_a_failed_download_again(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    files = {"gone-Q4_K_M.gguf": tiny_models["chat"]}
    repo = model_hub.add(FakeRepo("bad/gone", dict(files)))
    model_hub.bytes_per_second = 1  # hold the queue back while the file disappears
    await served.post("/v0/models/register", {"model_id": "qwen3"})  # first in the queue
    await served.post("/v0/models/register", {"repo": "bad/gone"})
    repo.files.clear()
    model_hub.bytes_per_second = None
    await served.delete("/v0/models/qwen3")
    assert "404" in await error_of(served, "bad/gone")
    status, body = await served.post("/v1/chat/completions", chat("bad/gone"))
    assert status == 503 and body["error"]["code"] == "model_error"  # no load to try
    repo.files.update(files)  # back on the Hub
    status, body = await served.post("/v0/models/bad/gone/retry")
    assert status == 200 and body["retried_nodes"] == [node(served).node_id], body
    await eventually(lambda: _is(served, "bad/gone", "ready"), timeout=20)
    status, body = await served.post("/v1/chat/completions", chat("bad/gone"))
    assert status == 200, body
