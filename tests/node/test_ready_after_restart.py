"""A model found complete on disk at start reports its size as downloaded, not 0 B."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHAT_FILE, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_REPO, register_ready
from tests.support.waiting import eventually

PLAIN_REPO = "tiny/plain-gguf"  # a small file kept in git, not LFS: the Hub gives no sha256


class PlainRepo(FakeRepo):
    """A repo whose files are in git itself (as small files are on the Hub): no LFS hash."""

    @staticmethod
    def is_lfs(name: str) -> bool:
        return False


def add_plain_repo(hub: FakeHub, tiny_models: dict[str, bytes]) -> None:
    """Publish the tiny chat model as a plain (non-LFS) file."""
    hub.add(PlainRepo(PLAIN_REPO, {CHAT_FILE: tiny_models["chat"]}))


async def node_reports(b: Any, name: str) -> list[dict[str, Any]]:
    """Every node's report on the model in GET /v0/models."""
    _, models = await b.get("/v0/models")
    return next((m["nodes"] for m in models if m["id"] == name), [])


@pytest.mark.parametrize("repo", [PLAIN_REPO, CHAT_REPO], ids=["no-sha256", "lfs-sha256"])
async def test_a_ready_model_reports_its_size_after_a_restart(
    tmp_path: Path, model_hub: FakeHub, tiny_models: dict[str, bytes], repo: str
) -> None:
    add_plain_repo(model_hub, tiny_models)
    settings = balancer_settings(tmp_path / "data", local_node=True, context_size=512)
    size = len(tiny_models["chat"])
    async with run_balancer(settings) as b:
        name = await register_ready(b, repo)
        [before] = await node_reports(b, name)
        assert before["downloaded_bytes"] == before["total_bytes"] == size
    downloads = len(model_hub.file_requests(CHAT_FILE))
    async with run_balancer(settings) as b:

        async def reported_again() -> list[dict[str, Any]]:
            # The node's own report (with its path), not what the balancer saved last run.
            _, nodes = await b.get("/v0/nodes")
            return [m for m in nodes[0]["models"] if m["state"] == "ready" and m["path"]]

        [model] = await eventually(reported_again, timeout=30)
        assert model["downloaded_bytes"] == model["total_bytes"] == size  # not 0 B
        [after] = await node_reports(b, name)
        assert after["node_online"]
        assert after["downloaded_bytes"] == after["total_bytes"] == size
    assert len(model_hub.file_requests(CHAT_FILE)) == downloads  # nothing fetched again
