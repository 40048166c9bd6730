"""Claude Code itself (the npm package, `claude -p`) against the balancer and its local node
on a generated model with a large declared context: one non-interactive prompt completes
without a protocol error. Skipped where Claude Code is not installed (set LLMLB_CLAUDE to its
binary, or put `claude` on the PATH).

What Claude Code 2.1.197 sent here: one streamed `POST /v1/messages?beta=true` of 78 KB with
`system`, 24 `tools`, `thinking: {type: adaptive}`, `output_config: {effort: high}`,
`context_management` (a clear_thinking edit), `metadata.user_id`, `max_tokens: 32000`, and
`messages` of a user turn then a *system* message (refused with a 400 until `system` turns
were read); answered 200, `claude -p` exits 0 with the model's noise."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.server.api_anthropic_request import to_chat
from tests.conftest import balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import register_ready
from tests.support.tiny_gguf import write_llama_gguf

CLAUDE = os.environ.get("LLMLB_CLAUDE") or shutil.which("claude")
LONG_REPO = "tiny/long-context-gguf"
pytestmark = pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")


async def test_claude_code_completes_a_prompt(
    tmp_path: Path, model_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CLAUDE is not None
    # Claude Code's prompt is tens of thousands of tokens: a model that declares room for it.
    model = write_llama_gguf(tmp_path / "long.gguf", context_length=65536)
    model_hub.add(FakeRepo(LONG_REPO, {"tiny-long-F32.gguf": model.read_bytes()}))
    seen: list[dict[str, Any]] = []

    def recording(body: dict[str, Any]) -> Any:
        seen.append(body)
        return to_chat(body)

    monkeypatch.setattr("app.server.api_anthropic.to_chat", recording)
    settings = balancer_settings(
        tmp_path / "data", local_node=True, context_size=65536, idle_unload_ttl=600.0
    )
    async with run_balancer(settings) as b:
        name = await register_ready(b, LONG_REPO)
        home = tmp_path / "claude-home"
        home.mkdir()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": b.url,
            "ANTHROPIC_API_KEY": "unused",
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": name,
            "ANTHROPIC_SMALL_FAST_MODEL": name,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
        }
        proc = await asyncio.create_subprocess_exec(
            CLAUDE,
            "-p",
            "say hello",
            "--model",
            name,
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
        assert all(r["status"] == 200 for r in rows if r["endpoint"].startswith("/v1/messages")), (
            report
        )
        assert proc.returncode == 0, report
