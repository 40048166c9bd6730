"""Model aliases (`model_aliases`, LLMLB_MODEL_ALIASES): the names agents pick for themselves
(Claude Code asks for `claude-opus-…`, its helpers for `claude-haiku-…`) reach a local model."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest

from app.core.errors import StartupError
from app.server.aliases import parse_aliases, resolve
from tests.conftest import CHAT_REPO, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import register_ready


async def test_every_claude_name_reaches_the_aliased_local_model(
    tmp_path: Path, model_hub: FakeHub
) -> None:
    settings = balancer_settings(
        tmp_path / "data",
        local_node=True,
        context_size=512,
        idle_unload_ttl=600.0,
        model_aliases=f"claude-*={CHAT_REPO}, gpt-4o = {CHAT_REPO}, tiny/*=elsewhere",
    )
    async with run_balancer(settings) as b:
        name = await register_ready(b, CHAT_REPO)
        api = anthropic.AsyncAnthropic(base_url=b.url, api_key="unused", max_retries=0)
        for asked in ("claude-opus-4-8", "claude-haiku-4-5-20251001"):
            answer = await api.messages.create(
                model=asked, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
            )
            assert answer.model == asked  # the client sees the name it asked for
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        status, body = await b.post("/v1/chat/completions", chat)
        assert status == 200, body
        _, rows = await b.get("/v0/requests")
        assert [r["model"] for r in rows[:3]] == [name] * 3  # served by the local model
        # A model's own name is never aliased (`tiny/*` would send it elsewhere).
        status, body = await b.post("/v1/chat/completions", {**chat, "model": name})
        assert status == 200, body
        # A name no alias matches is still unknown.
        status, body = await b.post("/v1/chat/completions", {**chat, "model": "gpt-5"})
        assert status == 404 and body["error"]["code"] == "model_not_found", body


def test_the_first_matching_alias_wins_and_names_are_case_sensitive() -> None:
    aliases = "claude-3-*=old, claude-*=new"
    assert resolve("claude-3-opus", aliases) == "old"
    assert resolve("claude-sonnet-4", aliases) == "new"
    assert resolve("Claude-sonnet-4", aliases) is None  # names are case-sensitive, as models
    assert parse_aliases(" , ") == ()


async def test_a_malformed_alias_setting_stops_the_start_naming_the_entry(tmp_path: Path) -> None:
    settings = balancer_settings(tmp_path / "data", model_aliases="claude-*")
    with pytest.raises(StartupError, match="'claude-\\*' is not pattern=model"):
        async with run_balancer(settings):
            pass
