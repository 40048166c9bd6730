"""OpenAI's Codex CLI itself (the npm package, `codex exec`) against the balancer and its local
node on a generated model with a large declared context: one non-interactive prompt completes
without a protocol error, through a custom provider at our /v1 (`wire_api = "responses"`).
Codex comes from `make agents` (pinned in tools/agents), or LLMLB_CODEX names its binary, or
`codex` is on the PATH; skipped without one (failed on CI, which installs it).

What Codex 0.171 sent here: one streamed `POST /v1/responses` of about 40 KB with `model`,
`input` (two `developer` messages, the environment and the prompt as `user` messages, each
a `message` item with an `id` and `input_text` parts), 9 `tools` (7 functions, a `namespace`
`multi_agent_v1` of 5 functions, a hosted `web_search`), `tool_choice: auto`,
`parallel_tool_calls: true`, `reasoning: {summary: auto}`, `store: false`, `stream: true`,
`include: ["reasoning.encrypted_content"]`, `prompt_cache_key` and `client_metadata`.
After a function call, its next request replays the whole conversation (store is false): the
same messages, then the `function_call` item as we answered it (id, call_id, name,
arguments, status) and a `function_call_output` item (with an id of its own) holding the
command's output."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app.server.api_responses_request import to_chat
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import register_ready
from tests.server.test_api_anthropic_stream import chunk
from tests.server.test_edge import add_external, hostile_node
from tests.support.agents import need_cli
from tests.support.tiny_gguf import write_llama_gguf

LONG_REPO = "tiny/long-context-gguf"


def config(base_url: str, model: str) -> str:
    """Codex's config.toml: our balancer as its one provider, nothing else reached."""
    return f"""
model = "{model}"
model_provider = "llmlb"
[model_providers.llmlb]
name = "llmlb"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "LLMLB_API_KEY"
request_max_retries = 0
stream_max_retries = 0
"""


@pytest.mark.timeout(400)
async def test_codex_completes_a_prompt(
    tmp_path: Path, model_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    codex = need_cli("codex", "LLMLB_CODEX", "the Codex CLI")
    # Codex's prompt is tens of thousands of tokens: a model that declares room for it.
    model = write_llama_gguf(tmp_path / "long.gguf", context_length=65536)
    model_hub.add(FakeRepo(LONG_REPO, {"tiny-long-F32.gguf": model.read_bytes()}))
    seen: list[dict[str, Any]] = []

    def recording(body: dict[str, Any], previous: Any = None) -> Any:
        seen.append(body)
        return to_chat(body, previous)

    monkeypatch.setattr("app.server.api_responses.to_chat", recording)
    settings = balancer_settings(
        tmp_path / "data", local_node=True, context_size=65536, idle_unload_ttl=600.0
    )
    async with run_balancer(settings) as b:
        name = await register_ready(b, LONG_REPO)
        home = tmp_path / "codex-home"
        home.mkdir()
        (home / "config.toml").write_text(config(b.url, name))
        work = tmp_path / "work"
        work.mkdir()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "CODEX_HOME": str(home),
            "LLMLB_API_KEY": "unused",
            "NO_COLOR": "1",
        }
        proc = await asyncio.create_subprocess_exec(
            codex,
            "exec",
            "--skip-git-repo-check",
            "say hello",
            cwd=work,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 300)
        _, rows = await b.get("/v0/requests")
        report = (proc.returncode, out.decode()[-2000:], err.decode()[-3000:], rows[:5])
        assert seen, report  # Codex spoke to /v1/responses
        asked = seen[0]
        assert asked["stream"] is True and asked["store"] is False, sorted(asked)
        kinds = {tool["type"] for tool in asked["tools"]}
        assert {"function", "namespace"} <= kinds, kinds
        assert all(r["status"] == 200 for r in rows if r["endpoint"] == "/v1/responses"), report
        assert all(r["error"] is None for r in rows), report
        assert proc.returncode == 0, report


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + (
        b"data: [DONE]\n\n"
    )


async def test_codex_runs_a_tool_and_reads_its_output(
    balancer: RunningBalancer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scripted server behind the balancer (outside our product) asks Codex to run a
    command, then answers: Codex reads the function_call, runs it, and sends its output back
    as a function_call_output in the next request."""
    codex = need_cli("codex", "LLMLB_CODEX", "the Codex CLI")
    asked: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []  # what Codex sent to /v1/responses

    def recording(body: dict[str, Any], previous: Any = None) -> Any:
        sent.append(body)
        return to_chat(body, previous)

    monkeypatch.setattr("app.server.api_responses.to_chat", recording)

    async def scripted(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        asked.append(body)
        last = body["messages"][-1]
        if last["role"] == "tool":
            delta: dict[str, Any] = {"content": f"the command said: {last['content'][-200:]}"}
            finish = "stop"
        else:
            call = {"name": "exec_command", "arguments": json.dumps({"cmd": "echo tool-ran"})}
            delta = {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": call}]}  # fmt: skip
            finish = "tool_calls"
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        usage = {"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
        opening = chunk({"role": "assistant", "content": ""})
        await response.write(_sse([opening, chunk(delta), chunk({}, finish), usage]))
        await response.write_eof()
        return response

    async with hostile_node(scripted) as url:
        await add_external(balancer, url)
        home = tmp_path / "codex-home"
        home.mkdir()
        (home / "config.toml").write_text(config(balancer.url, "m"))
        work = tmp_path / "work"
        work.mkdir()
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "CODEX_HOME": str(home),
               "LLMLB_API_KEY": "unused", "NO_COLOR": "1"}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            codex, "exec", "--skip-git-repo-check", "run it", cwd=work, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        report = (proc.returncode, out.decode()[-2000:], err.decode()[-3000:], len(asked))
        assert proc.returncode == 0 and len(asked) == 2, report
        # Codex sent the call back as an item of its own, and the command's output after it.
        items = [i for i in sent[1]["input"] if i.get("type", "message") != "message"]
        assert [(i["type"], i.get("call_id")) for i in items] == [
            ("function_call", "call_1"),
            ("function_call_output", "call_1"),
        ], items
        [result] = [m for m in asked[1]["messages"] if m["role"] == "tool"]
        assert result["tool_call_id"] == "call_1" and "tool-ran" in result["content"], result
        assert "the command said" in out.decode(), report
