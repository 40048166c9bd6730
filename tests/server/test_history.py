"""The request record: whatever model name a client sends, the history and metrics keep working."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from app.context import DB_FILE
from app.core.tasks import TaskSupervisor
from app.db.request_store import RequestStore
from app.db.store import Store
from app.server import history
from app.server.bodies import Capture
from app.server.speed import usage_tokens
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.node.conftest import register_ready, served

__all__ = ["served"]  # a fixture


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


async def test_the_history_keeps_each_answers_tokens_and_who_asked(served: RunningBalancer) -> None:
    """A dashboard's tokens and tokens/s come from the history: the usage of plain and streamed
    answers, the time spent generating, and the API key's name as the client."""
    name = await register_ready(served)
    status, key = await served.post("/v0/api-keys", {"name": "editor"})
    assert status == 201, key
    client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=key["key"])
    chat: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    whole = await client.chat.completions.create(model=name, messages=chat, max_tokens=6)
    assert whole.usage is not None
    stream = await client.chat.completions.create(
        model=name, messages=chat, max_tokens=6, stream=True, stream_options={"include_usage": True}
    )
    usage = [c.usage async for c in stream if c.usage is not None]
    admin = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key=served.token)
    await admin.chat.completions.create(model=name, messages=chat, max_tokens=2)
    status, records = await served.get("/v0/requests")
    assert status == 200, records
    by_admin, streamed, plain = records[:3]
    assert plain["tokens_in"] == whole.usage.prompt_tokens
    assert plain["tokens_out"] == whole.usage.completion_tokens
    assert streamed["stream"] and streamed["tokens_out"] == usage[-1].completion_tokens
    assert streamed["tokens_in"] == usage[-1].prompt_tokens
    for row in (plain, streamed):
        assert row["client"] == "editor"
        assert 0 < row["generation_ms"] <= row["duration_ms"]
    assert by_admin["client"] == "admin"


def test_usage_is_read_in_either_order_of_its_fields() -> None:
    """OpenAI writes prompt_tokens first, llama-server completion_tokens first; a quoted key
    inside the generated text is escaped and cannot be taken for the usage block."""
    openai_order = (
        b'{"content":"\\"prompt_tokens\\": 9"},"usage":{"prompt_tokens":12,"completion_tokens":5}}'
    )
    llama_order = b'"usage":{"completion_tokens":5,"prompt_tokens":12,"total_tokens":17}}'
    assert usage_tokens(openai_order) == (12, 5)
    assert usage_tokens(b"data: ", llama_order) == (12, 5)
    assert usage_tokens(b'{"choices":[]}') == (None, None)


async def test_a_full_batch_is_written_at_once_not_at_the_next_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the history goes to disk in small batches, each as soon as it is full (short
    turns on the database thread, so requests in flight do not wait behind a big one): here the
    flusher's timer is an hour away, and three requests make a batch."""
    monkeypatch.setattr(history, "FLUSH_EVERY", 3600.0)
    monkeypatch.setattr(history, "BATCH_ROWS", 3)
    data = tmp_path / "data"
    async with run_balancer(balancer_settings(data)) as b:
        for n in range(3):
            status, _ = await b.post("/v1/chat/completions", {"model": f"absent-{n}"})
            assert status == 404

        def written() -> list[str]:
            with sqlite3.connect(data / DB_FILE) as conn:
                return [m for (m,) in conn.execute("SELECT model FROM requests ORDER BY id")]

        for _ in range(200):
            if len(await asyncio.to_thread(written)) == 3:
                break
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(written) == ["absent-0", "absent-1", "absent-2"]


def absent_with_body(history_: history.RequestHistory, n: int, size: int) -> None:
    """A request for `absent-n` whose body is `size` bytes, recorded."""
    capture = Capture()
    capture.keep_request(b'{"model": "absent-%d", "pad": "%s"}' % (n, b"x" * (size - 32)))
    history_.record(
        "/v1/chat/completions", f"absent-{n}", None, 404, False, time.perf_counter(), None,
        "no such model", known_model=False, bodies=capture,
    )  # fmt: skip


async def test_past_the_bodies_budget_requests_are_kept_without_their_bodies(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood of big answers faster than the history is written: every request is still
    recorded, but past BODIES_BUDGET bytes waiting, without its bodies (memory stays bounded),
    with a warning; once written, bodies are kept again. Big batches go in chunks."""
    monkeypatch.setattr(history, "BODIES_BUDGET", 3000)
    monkeypatch.setattr(history, "CHUNK_BYTES", 1500)  # 2 of these bodies a chunk
    requests = RequestStore(store)
    recorder = history.RequestHistory(requests, TaskSupervisor("t"))
    for n in range(5):
        absent_with_body(recorder, n, 1000)  # three fit in the budget
    await recorder.flush()
    absent_with_body(recorder, 5, 1000)  # written: room again
    await recorder.flush()
    rows = list(reversed(await requests.recent(10)))
    assert [r["model"] for r in rows] == [f"absent-{n}" for n in range(6)]
    kept = []
    for row in rows:
        found = await requests.one(row["id"])
        assert found is not None
        kept.append(found[1] is not None)
    assert kept == [True, True, True, False, False, True]
    assert "2 requests were recorded without their bodies" in caplog.text
