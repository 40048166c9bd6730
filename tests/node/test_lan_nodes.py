"""Real `llmlb node` processes joining a balancer: approval, sync, spread, failover, mDNS."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.context import AppContext
from tests.conftest import CHAT_FILE, CHAT_REPO, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import hub_entry
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


class NodeProcess:
    """`llmlb node` in its own process, as on another machine."""

    def __init__(
        self,
        data: Path,
        hub: FakeHub,
        balancer: str | None,
        token: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data = data
        self.args = [
            sys.executable,
            "-m",
            "app",
            "node",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(data),
            "--join-token",
            token,
        ]
        if balancer:
            self.args += ["--balancer", balancer]
        self.env = {**os.environ, "HF_ENDPOINT": hub.url, **(extra_env or {})}
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> NodeProcess:
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        return self

    @property
    def node_id(self) -> str | None:
        try:
            return str(json.loads((self.data / "node" / "node.json").read_text())["node_id"])
        except (OSError, ValueError, KeyError):
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            finally:
                self.proc.kill()
        return int(self.proc.returncode)


@pytest.fixture
async def cluster(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A balancer without a local node; nodes join it as other machines would."""
    async with run_balancer(balancer_settings(tmp_path / "balancer", node_offline_after=3.0)) as b:
        yield b


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    """Node processes started by a test, always stopped."""
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.kill()


async def join(
    b: RunningBalancer, hub: FakeHub, data: Path, nodes: list[NodeProcess], approve: bool = True
) -> NodeProcess:
    _, cluster_info = await b.get("/v0/cluster")
    node = NodeProcess(data, hub, b.url, cluster_info["join_token"]).start()
    nodes.append(node)

    async def listed() -> dict[str, Any] | None:
        _, listing = await b.get("/v0/nodes")
        return next((n for n in listing if n["id"] == node.node_id), None)

    async def identity_saved() -> str | None:
        return node.node_id

    await eventually(identity_saved, timeout=30)
    view = await eventually(listed, timeout=30)
    assert view["status"] == "pending"
    if approve:
        status, _ = await b.post(f"/v0/nodes/{view['id']}/approve")
        assert status == 200
    return node


async def node_status(b: RunningBalancer, node_id: str | None) -> str | None:
    _, view = await b.get(f"/v0/nodes/{node_id}")
    return view.get("status") if isinstance(view, dict) else None


async def test_a_node_joins_waits_for_approval_then_serves(
    cluster: RunningBalancer, model_hub: FakeHub, tmp_path: Path, nodes: list[NodeProcess]
) -> None:
    node = await join(cluster, model_hub, tmp_path / "n1", nodes, approve=False)
    await cluster.post("/v0/models/register", {"repo": CHAT_REPO})
    registered_at = time.time()
    beats: set[float] = set()

    async def heartbeats_since_register(count: int) -> bool:
        _, view = await cluster.get(f"/v0/nodes/{node.node_id}")
        seen = view.get("last_seen")
        if isinstance(seen, float | int) and seen > registered_at:
            beats.add(seen)
        return len(beats) >= count

    # Two heartbeats answered with the new model list: an approved node would be fetching.
    await eventually(lambda: heartbeats_since_register(2), timeout=30, interval=0.1)
    assert await node_status(cluster, node.node_id) == "pending"
    assert not model_hub.file_requests(CHAT_FILE)
    assert not (tmp_path / "n1" / "node" / "models" / "tiny--chat-gguf").exists()
    await cluster.post(f"/v0/nodes/{node.node_id}/approve")

    async def ready() -> bool:
        entry = await hub_entry(cluster, CHAT_REPO)
        return bool(entry and entry["lifecycle_status"] == "ready")

    await eventually(ready, timeout=30)
    assert await node_status(cluster, node.node_id) == "online"
    body = {"model": CHAT_REPO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    async with cluster.http.post(cluster.url + "/v1/chat/completions", json=body) as r:
        assert r.status == 200
        assert r.headers["x-llmlb-node"] == node.node_id
        assert (await r.json())["usage"]["completion_tokens"] >= 1
    assert node.stop() == 0


async def stream_nodes(b: RunningBalancer, count: int) -> list[str]:
    body = {
        "model": CHAT_REPO,
        "messages": [{"role": "user", "content": "go"}],
        "max_tokens": 24,
        "stream": True,
    }

    async def one() -> str:
        async with b.http.post(b.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200
            text = await r.text()
            assert text.rstrip().endswith("data: [DONE]")
            return r.headers["x-llmlb-node"]

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_two_nodes_share_the_load_and_survive_one_dying(
    cluster: RunningBalancer, model_hub: FakeHub, tmp_path: Path, nodes: list[NodeProcess]
) -> None:
    a = await join(cluster, model_hub, tmp_path / "a", nodes)
    b = await join(cluster, model_hub, tmp_path / "b", nodes)
    await cluster.post("/v0/models/register", {"repo": CHAT_REPO})

    async def both_ready() -> bool:
        entry = await hub_entry(cluster, CHAT_REPO)
        return bool(entry and len(entry["ready_nodes"]) == 2)

    await eventually(both_ready, timeout=40)
    served = await stream_nodes(cluster, 6)
    assert set(served) == {a.node_id, b.node_id}  # least-loaded choice spreads them
    downloads = len(model_hub.file_requests("tiny-chat-F32.gguf"))
    assert downloads == 2  # each node fetched its own copy

    # Kill node A in the middle of a long stream on it: that client sees an error event.
    body = {
        "model": CHAT_REPO,
        "messages": [{"role": "user", "content": "long"}],
        "max_tokens": 2000,
        "stream": True,
        "logit_bias": {"2": -100, "260": -100},
    }
    # Streams that land on B stay open, so the least-busy choice sends the next one to A.
    held, victim, rest = [], None, ""
    try:
        for i in range(6):
            body["messages"] = [{"role": "user", "content": f"long story {i}"}]
            r = await cluster.http.post(cluster.url + "/v1/chat/completions", json=body)
            if r.headers["x-llmlb-node"] != a.node_id:
                held.append(r)
                continue
            victim = a
            await r.content.readline()
            a.kill()
            rest = (await r.read()).decode()
            r.release()
            break
    finally:
        for r in held:
            r.close()
    assert victim is a, "no stream landed on node A"
    assert '"code": "node_failed"' in rest and "[DONE]" not in rest
    # The next requests go to B, and A is offline within the offline delay.
    served = await stream_nodes(cluster, 3)
    assert set(served) == {b.node_id}

    async def a_offline() -> bool:
        return await node_status(cluster, a.node_id) == "offline"

    await eventually(a_offline, timeout=15)
    # A restarts: back online with its models, nothing downloaded again.
    a.start()

    async def a_online() -> bool:
        status = await node_status(cluster, a.node_id)
        if status == "pending":  # a new port is a new URL: the admin approves it again
            await cluster.post(f"/v0/nodes/{a.node_id}/approve")
        return status == "online"

    await eventually(a_online, timeout=30)
    assert len(model_hub.file_requests("tiny-chat-F32.gguf")) == downloads

    # Delete reaches every node: both delete their files.
    status, _ = await cluster.delete(f"/v0/models/{CHAT_REPO}")
    assert status == 204

    async def files_gone() -> bool:
        return not any(
            (tmp_path / n / "node" / "models" / "tiny--chat-gguf").exists() for n in ("a", "b")
        )

    await eventually(files_gone, timeout=20)


async def test_a_node_finds_the_balancer_by_mdns_on_loopback(
    tmp_path: Path,
    model_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    nodes: list[NodeProcess],
) -> None:
    monkeypatch.setenv("LLMLB_MDNS_INTERFACES", "127.0.0.1")  # multicast stays on loopback
    ctx = AppContext(balancer_settings(tmp_path / "balancer"))
    await ctx.start()
    try:
        async with aiohttp.ClientSession() as http:
            b = RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
            _, info = await b.get("/v0/cluster")
            assert info["discovery"] is True
            node = NodeProcess(
                tmp_path / "n",
                model_hub,
                None,
                info["join_token"],
                {"LLMLB_MDNS_INTERFACES": "127.0.0.1"},
            ).start()
            nodes.append(node)

            async def joined() -> list[Any]:
                _, listing = await b.get("/v0/nodes")
                return [n for n in listing if n["status"] == "pending"]

            [view] = await eventually(joined, timeout=30)

            async def identity_saved() -> str | None:
                return node.node_id

            assert view["id"] == await eventually(identity_saved, timeout=10)
            assert node.stop() == 0
    finally:
        await ctx.stop()
