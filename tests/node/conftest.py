"""Fixtures for node tests: tiny generated GGUF models on the fake Hub, a balancer with its node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    CHAT_FILE,
    CHAT_REPO,
    EMBED_FILE,
    EMBED_REPO,
    RunningBalancer,
    balancer_settings,
    run_balancer,
)
from tests.fakes.fake_hub import FakeHub
from tests.support.waiting import eventually

__all__ = ["CHAT_FILE", "CHAT_REPO", "EMBED_FILE", "EMBED_REPO"]


@pytest.fixture
async def served(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A balancer with its in-process local node, on loopback."""
    settings = balancer_settings(
        tmp_path / "data",
        local_node=True,
        context_size=512,
        idle_unload_ttl=600.0,
        download_read_timeout=2.0,
    )
    async with run_balancer(settings) as b:
        yield b


async def hub_entry(b: RunningBalancer, name: str) -> dict[str, Any] | None:
    """The model's entry in /v0/models/hub."""
    _, hub = await b.get("/v0/models/hub")
    return next((m for m in hub if m["id"] == name), None)


async def register_ready(b: RunningBalancer, repo: str = CHAT_REPO) -> str:
    """Register a tiny model by repo and wait until a node serves it."""
    status, body = await b.post("/v0/models/register", {"repo": repo})
    assert status == 201, body
    name = str(body["name"])

    async def ready() -> bool:
        entry = await hub_entry(b, name)
        assert entry is not None and entry.get("lifecycle_status") != "error", entry
        return entry["lifecycle_status"] == "ready"

    await eventually(ready)
    return name
