"""The Playground's figures under an answer are the node's own: its tokens/s over the time it
generated, not the gaps between chunks that arrive gathered."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import aiohttp
from PySide6.QtCore import Qt

from tests.node.conftest import CHAT_REPO
from tests.ui.conftest import App
from tests.ui.test_playground import press, ready_chat

# The tiny test model really makes a few thousand tokens a second here; the old figure (tokens
# over the gap between the first and last gathered chunk) was tens of times more than that.
PLAUSIBLE_FACTOR = 10


async def _speed_by_the_clock(gui: App) -> float:
    """Tokens per second of a long answer, timed from outside the node (a lower bound of its
    speed: the time also holds the prompt and two HTTP trips)."""
    body = {"model": CHAT_REPO, "messages": [{"role": "user", "content": "Hello"}]}
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        async with http.post(
            gui.ctx.base_url + "/v1/chat/completions", json=body | {"max_tokens": 200}
        ) as r:
            answer = await r.json()
        took = time.perf_counter() - started
    return float(answer["usage"]["completion_tokens"]) / took


async def _stream_end(gui: App) -> list[dict[str, Any]]:
    """The last events of a streamed chat as a tool gets them from the balancer."""
    body = {
        "model": CHAT_REPO,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = []
    async with aiohttp.ClientSession() as http:
        async with http.post(gui.ctx.base_url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200
            async for raw in r.content:
                line = raw.decode().strip()
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    events.append(json.loads(line[5:]))
    return events


def test_the_balancer_relays_the_nodes_timings_at_the_end_of_a_stream(gui: App) -> None:
    ready_chat(gui)
    events = gui.run(_stream_end(gui))
    final = next(e for e in events if e["choices"] and e["choices"][0]["finish_reason"])
    usage = next(e["usage"] for e in events if e.get("usage"))
    timings = final["timings"]  # where llama-server sends them
    assert timings["predicted_n"] == usage["completion_tokens"]
    assert timings["prompt_n"] == usage["prompt_tokens"]
    assert timings["prompt_ms"] > 0 and timings["predicted_ms"] > 0
    per_second = timings["predicted_n"] * 1000 / timings["predicted_ms"]
    assert abs(timings["predicted_per_second"] - per_second) < 0.01
    assert 0 < per_second < PLAUSIBLE_FACTOR * gui.run(_speed_by_the_clock(gui))


def test_stats_show_the_nodes_speed_and_first_token_time(gui: App) -> None:
    ready_chat(gui)
    window = gui.desktop.window
    window.show_page("Playground")
    page = window.playground.chat
    page.max_tokens.setValue(64)
    page.input.setPlainText("Tell me a story")
    press(page.input, Qt.Key.Key_Return)
    gui.wait(lambda: page.task.done(), timeout=30)
    answer = page.widgets[-1]
    shown = answer.stats.text()
    # The figures the answer carried, as the Playground saved them with the message.
    assert page.conversation_id is not None
    detail = gui.run(gui.desktop.client.conversation(page.conversation_id))
    timings = detail["messages"][-1]["stats"]["timings"]
    n, ms = timings["predicted_n"], timings["predicted_ms"]
    assert n > 1 and f"{n} tokens" in shown
    figure = re.search(r"([\d.]+) tok/s", shown)
    assert figure is not None
    speed = float(figure.group(1))
    assert speed == round(n * 1000 / ms, 1)
    assert 0 < speed < PLAUSIBLE_FACTOR * gui.run(_speed_by_the_clock(gui))
    assert f"first token {round(timings['prompt_ms'])} ms" in shown
