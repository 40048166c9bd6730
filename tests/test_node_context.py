"""`llmlb node`'s composition root, in-process: it joins its balancer and stops cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.errors import StartupError
from app.core.settings import Settings
from app.node_context import NodeContext, NodeOptions
from tests.conftest import balancer_settings, run_balancer
from tests.support.waiting import eventually


async def test_a_node_context_joins_its_balancer_and_stops_twice(tmp_path: Path) -> None:
    async with run_balancer(balancer_settings(tmp_path / "b")) as b:
        _, cluster = await b.get("/v0/cluster")
        ctx = NodeContext(
            Settings(data_dir=tmp_path / "n", join_token=cluster["join_token"]),
            NodeOptions(balancer_url=b.url, host="127.0.0.1", port=0, name="spare"),
        )
        await ctx.start()
        try:
            assert ctx.url.startswith("http://127.0.0.1:")

            async def listed() -> dict[str, Any] | None:
                _, nodes = await b.get("/v0/nodes")
                return next((n for n in nodes if n["name"] == "spare"), None)

            view = await eventually(listed, timeout=20)
            assert view["status"] == "pending" and view["url"] == ctx.url
        finally:
            await ctx.stop()
        await ctx.stop()  # idempotent, as AppContext's
        assert ctx.agent is None and (tmp_path / "n" / "node" / "node.json").exists()


def test_a_node_context_refuses_a_bad_pin_before_touching_the_disk(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "n", join_token="t", balancer_fingerprint="zz")
    with pytest.raises(StartupError, match="--balancer-fingerprint"):
        NodeContext(settings, NodeOptions(balancer_url="http://127.0.0.1:1"))
    assert not (tmp_path / "n").exists()
