"""Claude Code itself (the npm package, `claude -p`) against the balancer and its local node
on a generated model with a large declared context: one non-interactive prompt completes
without a protocol error. Claude Code comes from `make agents` (pinned in tools/agents), or
LLMLB_CLAUDE names its binary, or `claude` is on the PATH; skipped without one (failed on CI,
which installs it).

Claude Code is set up as a user would: `ANTHROPIC_BASE_URL` at the balancer, an API key of
the balancer's (as `ANTHROPIC_API_KEY`, sent as `x-api-key`, or `ANTHROPIC_AUTH_TOKEN`, sent
as a bearer token), no `--model`: the `model_aliases` setting maps every `claude-*` name it
picks to the local model. Its vendor traffic is off (tests/support/agents.py).

What Claude Code 2.1.197 sent here: one streamed `POST /v1/messages?beta=true` of 78 KB with
`system`, 24 `tools`, `thinking: {type: adaptive}`, `output_config: {effort: high}`,
`context_management` (a clear_thinking edit), `metadata.user_id` (a JSON string),
`max_tokens: 64000` (32000 with `--model`), model `claude-opus-4-8`, and `messages` of a user
turn then a *system* message (refused with a 400 until `system` turns were read). Without an
alias the name is a 404; Claude Code then retries once without `stream` and gives up with
"There's an issue with the selected model (claude-opus-4-8[1m])", exit 1. With the alias:
answered 200, `claude -p` exits 0 with the model's noise."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from app.server.api_anthropic_request import to_chat
from tests.conftest import balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import register_ready
from tests.support.agents import QUIET_ENV, need_cli
from tests.support.tiny_gguf import write_llama_gguf

LONG_REPO = "tiny/long-context-gguf"


@pytest.mark.parametrize("key_var", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
async def test_claude_code_completes_a_prompt(
    tmp_path: Path, model_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, key_var: str
) -> None:
    claude = need_cli("claude", "LLMLB_CLAUDE", "Claude Code")
    # Claude Code's prompt is tens of thousands of tokens: a model that declares room for it.
    model = write_llama_gguf(tmp_path / "long.gguf", context_length=65536)
    model_hub.add(FakeRepo(LONG_REPO, {"tiny-long-F32.gguf": model.read_bytes()}))
    seen: list[dict[str, Any]] = []

    def recording(body: dict[str, Any]) -> Any:
        seen.append(body)
        return to_chat(body)

    monkeypatch.setattr("app.server.api_anthropic.to_chat", recording)
    settings = balancer_settings(
        tmp_path / "data",
        local_node=True,
        context_size=65536,
        idle_unload_ttl=600.0,
        model_aliases=f"claude-*={LONG_REPO}",
    )
    async with run_balancer(settings) as b:
        name = await register_ready(b, LONG_REPO)
        assert name == LONG_REPO  # the alias's target
        _, key = await b.post("/v0/api-keys", {"name": "claude code"})
        home = tmp_path / "claude-home"
        home.mkdir()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": b.url,
            key_var: key["key"],
            **QUIET_ENV,
        }
        proc = await asyncio.create_subprocess_exec(
            claude,
            "-p",
            "say hello",
            "--max-turns",
            "1",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 300)
        _, rows = await b.get("/v0/requests")
        report = (proc.returncode, out.decode()[-2000:], err.decode()[-2000:], rows[:5])
        assert seen, report  # Claude Code spoke to /v1/messages
        assert all(s["model"].startswith("claude-") for s in seen), report  # a name of its own
        messages = [r for r in rows if r["endpoint"].startswith("/v1/messages")]
        assert messages and all(r["status"] == 200 for r in messages), report
        assert all(r["model"] == name for r in messages), report  # served by the local model
        _, keys = await b.get("/v0/api-keys")
        assert keys[0]["last_used_at"] is not None  # it authenticated with the key
        assert proc.returncode == 0, report
