"""A node trusts no one: what a balancer sends is checked, secrets go only where they belong,
a pending node fetches nothing, and damaged model files are fetched again."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncZeroconf

from app.context import AppContext
from app.core.mdns import BALANCER_SERVICE, service_info
from app.node.agent import NodeAgent, NodeConfig
from app.node.balancer_client import (
    BalancerClient,
    BalancerNotTrusted,
    BalancerUnavailable,
    join_proof,
)
from app.node.download import download_file
from app.node.download_transfer import Progress
from tests.conftest import CHAT_FILE, CHAT_REPO, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import register_ready
from tests.node.test_lan_nodes import NodeProcess
from tests.support.waiting import eventually


# -- a balancer that is not ours -------------------------------------------------------------------
@dataclass
class Seen:
    """One request a fake balancer received."""

    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class FakeBalancer:
    """A tiny balancer run by someone else: it records everything a node sends it."""

    join_token: str = "not-the-token"  # what it computes its proof with
    models: list[dict[str, Any]] = field(default_factory=list)
    manifests: dict[str, Any] = field(default_factory=dict)
    file_body: bytes = b"#!/bin/sh\necho owned\n"
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def paths(self, method: str = "", path: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method.startswith(method) and s.path.startswith(path)]

    def saw(self, secret: str) -> bool:
        return any(secret in s.body or secret in json.dumps(s.headers) for s in self.seen)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = (await request.read()).decode(errors="replace")
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        response: web.StreamResponse = await handler(request)
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v0/nodes/challenge", self._challenge)
        app.router.add_post("/v0/nodes", self._register)
        app.router.add_post("/v0/health", self._health)
        app.router.add_get("/v0/models", self._models)
        app.router.add_get("/v0/models/registry/{name:.+}/manifest.json", self._manifest)
        app.router.add_get("/files/{path:.+}", self._file)
        return app

    async def _challenge(self, request: web.Request) -> web.Response:
        nonce = (await request.json())["nonce"]
        host, port = request.transport.get_extra_info("sockname")[:2]
        address = f"{host}:{port}"
        return web.json_response(
            {"proof": join_proof(self.join_token, nonce, address), "address": address}
        )

    async def _register(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"node_id": "n1", "node_token": "t1", "status": "registering"}, status=201
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "online", "manifest_version": "1"})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(self.models)

    async def _manifest(self, request: web.Request) -> web.Response:
        return web.json_response(self.manifests[request.match_info["name"]])

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.file_body)


@pytest.fixture
async def fake_balancer() -> AsyncIterator[FakeBalancer]:
    fake = FakeBalancer()
    runner = web.AppRunner(fake.app(), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def agents() -> AsyncIterator[list[NodeAgent]]:
    started: list[NodeAgent] = []
    yield started
    for agent in started:
        await agent.stop()


async def start_agent(
    agents: list[NodeAgent], data: Path, balancer_url: str, token: str
) -> NodeAgent:
    agent = NodeAgent(
        NodeConfig(
            data_dir=data, balancer_url=balancer_url, credential=token, heartbeat_interval=0.2
        )
    )
    agents.append(agent)
    await agent.start()
    return agent


async def test_a_balancer_without_the_proof_never_gets_the_join_token(
    tmp_path: Path, fake_balancer: FakeBalancer, agents: list[NodeAgent]
) -> None:
    agent = await start_agent(agents, tmp_path / "n", fake_balancer.url, "the-real-token")

    async def asked_twice() -> bool:
        return len(fake_balancer.paths("POST", "/v0/nodes/challenge")) >= 2

    await eventually(asked_twice, timeout=15)  # it keeps asking, and sends nothing else
    assert [s.path for s in fake_balancer.seen] == ["/v0/nodes/challenge"] * len(fake_balancer.seen)
    assert not fake_balancer.saw("the-real-token")
    assert not agent.registered.is_set()


async def test_an_evil_manifest_marks_the_model_error_and_writes_nothing(
    tmp_path: Path, fake_balancer: FakeBalancer, agents: list[NodeAgent]
) -> None:
    # A balancer that knows the token (a compromised one) still cannot write outside.
    fake_balancer.join_token = "tok"
    fake_balancer.models = [{"id": "evil/model"}, {"id": "../../escape"}]
    escape = "../../../x.sh"  # from data/models/evil--model: lands at data/../x.sh
    fake_balancer.manifests["evil/model"] = {
        "files": [{"name": escape, "url": fake_balancer.url + "/files/x.sh", "size": 21}]
    }
    agent = await start_agent(agents, tmp_path / "data", fake_balancer.url, "tok")

    async def failed() -> Any:
        state = agent.sync.states.get("evil/model")
        return state if state is not None and state.state == "error" else None

    state = await eventually(failed, timeout=15)
    assert "refused" in (state.error or "") and escape in (state.error or "")
    assert "../../escape" not in agent.sync.states  # a name that is no folder is left out
    assert not (tmp_path / "x.sh").exists()
    assert not (tmp_path / "data" / "models" / "evil--model").exists()  # nothing written
    assert not fake_balancer.paths("GET", "/files/")
    assert [m["state"] for m in agent.heartbeat_body()["models"]] == ["error"]


async def test_balancer_answers_are_read_with_a_size_cap(fake_balancer: FakeBalancer) -> None:
    fake_balancer.models = [{"id": f"m{i}", "pad": "x" * 1000} for i in range(20_000)]
    client = BalancerClient(fake_balancer.url)
    try:
        with pytest.raises(BalancerUnavailable, match="byte limit"):
            await client.model_names()
        fake_balancer.models = [{"id": f"org/m{i}"} for i in range(5000)]
        with pytest.raises(BalancerUnavailable, match="more than"):
            await client.model_names()
    finally:
        await client.close()


# -- Hugging Face credentials ----------------------------------------------------------------------
DATA = random.Random(11).randbytes(100_000)
FILE = "m-Q4_K_M.gguf"
REPO = "org/name"


@pytest.fixture
def two_hubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHub, FakeHub]]:
    """The configured Hub (HF_ENDPOINT, with HF_TOKEN set) and another host serving the same."""
    hf = FakeHub([FakeRepo(REPO, {FILE: DATA})]).start()
    other = FakeHub([FakeRepo(REPO, {FILE: DATA})]).start()
    monkeypatch.setenv("HF_ENDPOINT", hf.url)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    try:
        yield hf, other
    finally:
        hf.stop()
        other.stop()


def fetch(url: str, dest: Path) -> None:
    download_file(
        url,
        dest,
        expected_size=len(DATA),
        expected_sha256=hashlib.sha256(DATA).hexdigest(),
        progress=Progress(),
        cancel=threading.Event(),
        read_timeout=5.0,
        max_backoff=0.2,
    )
    assert dest.read_bytes() == DATA


def test_the_hf_token_goes_to_the_configured_hub_only(
    two_hubs: tuple[FakeHub, FakeHub], tmp_path: Path
) -> None:
    hf, other = two_hubs
    fetch(f"{hf.url}/{REPO}/resolve/main/{FILE}", tmp_path / "a" / FILE)
    assert {r.authorization for r in hf.requests} == {"Bearer hf_secret_token"}
    fetch(f"{other.url}/{REPO}/resolve/main/{FILE}", tmp_path / "b" / FILE)
    assert other.requests and {r.authorization for r in other.requests} == {None}


def test_a_redirect_to_another_host_carries_no_token(
    two_hubs: tuple[FakeHub, FakeHub], tmp_path: Path
) -> None:
    hf, cdn = two_hubs
    hf.redirect_to = cdn.url  # the Hub sends file bytes from its CDN
    fetch(f"{hf.url}/{REPO}/resolve/main/{FILE}", tmp_path / FILE)
    assert {r.authorization for r in hf.requests} == {"Bearer hf_secret_token"}
    assert cdn.file_requests(FILE) and {r.authorization for r in cdn.requests} == {None}


# -- a pending node fetches nothing ----------------------------------------------------------------
@pytest.mark.slow
async def test_a_pending_node_syncs_nothing_until_an_admin_approves_it(
    tmp_path: Path, model_hub: FakeHub, agents: list[NodeAgent]
) -> None:
    async with run_balancer(balancer_settings(tmp_path / "balancer")) as b:
        status, _ = await b.post("/v0/models/register", {"repo": CHAT_REPO})
        assert status == 201
        _, cluster = await b.get("/v0/cluster")
        agent = NodeAgent(
            NodeConfig(
                data_dir=tmp_path / "node",
                balancer_url=b.url,
                credential=cluster["join_token"],
                heartbeat_interval=0.2,
            )
        )
        agents.append(agent)
        asked: list[str] = []
        request = agent.client._request

        async def recording(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            asked.append(path)
            return await request(method, path, *args, **kwargs)

        agent.client._request = recording  # type: ignore[method-assign]
        await agent.start()

        async def heartbeats(count: int) -> bool:
            return asked.count("/v0/health") >= count

        await eventually(lambda: heartbeats(5), timeout=20)
        assert agent.status_name == "pending"
        assert not any(p.startswith("/v0/models") for p in asked)  # no list, no manifest
        assert not model_hub.file_requests(CHAT_FILE)
        assert not (tmp_path / "node" / "models" / "tiny--chat-gguf").exists()

        status, _ = await b.post(f"/v0/nodes/{agent.node_id}/approve")
        assert status == 200

        async def ready() -> bool:
            state = agent.sync.states.get(CHAT_REPO)
            return state is not None and state.state == "ready"

        await eventually(ready, timeout=30)
        assert len(model_hub.file_requests(CHAT_FILE)) == 1


# -- damaged files are fetched again ---------------------------------------------------------------
async def chat(b: RunningBalancer) -> int:
    body = {"model": CHAT_REPO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    status, answer = await b.post("/v1/chat/completions", body)
    assert status == 200, answer
    return int(answer["usage"]["completion_tokens"])


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "same size, other bytes"])
async def test_a_damaged_model_file_is_fetched_again_at_start(
    tmp_path: Path, model_hub: FakeHub, damage: str
) -> None:
    settings = balancer_settings(
        tmp_path / "data", local_node=True, context_size=512, download_read_timeout=2.0
    )
    async with run_balancer(settings) as b:
        await register_ready(b)
    path = tmp_path / "data" / "node" / "models" / "tiny--chat-gguf" / CHAT_FILE
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:
        middle = len(good) // 2
        path.write_bytes(good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :])
    fetched = len(model_hub.file_requests(CHAT_FILE))
    async with run_balancer(settings) as b:
        await register_ready_again(b)
        assert await chat(b) >= 1
    assert len(model_hub.file_requests(CHAT_FILE)) == fetched + 1
    assert path.read_bytes() == good


async def register_ready_again(b: RunningBalancer) -> None:
    """Wait until the (already registered) tiny model is ready on the local node again."""

    async def ready() -> bool:
        _, models = await b.get("/v0/models")
        entry = next((m for m in models if m["id"] == CHAT_REPO), None)
        assert entry is not None
        return entry["lifecycle_status"] == "ready"

    await eventually(ready, timeout=30)


# -- mDNS: the first balancer that answers is not trusted blindly ----------------------------------
@pytest.mark.slow
async def test_a_node_skips_an_impostor_found_by_mdns_and_joins_the_real_balancer(
    tmp_path: Path,
    model_hub: FakeHub,
    fake_balancer: FakeBalancer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMLB_MDNS_INTERFACES", "127.0.0.1")  # multicast stays on loopback
    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    port = int(fake_balancer.url.rsplit(":", 1)[1])
    info = service_info(BALANCER_SERVICE, "impostor", "127.0.0.1", port, {"version": "9"})
    await zc.async_register_service(info)
    node: NodeProcess | None = None
    ctx: AppContext | None = None
    try:
        # The node starts while only the impostor answers, so it surely meets it first.
        token = "llmlb-join-fixed-for-this-test"
        monkeypatch.setenv("LLMLB_JOIN_TOKEN", token)
        node = NodeProcess(
            tmp_path / "n", model_hub, None, token, {"LLMLB_MDNS_INTERFACES": "127.0.0.1"}
        ).start()

        async def challenged() -> bool:
            return bool(fake_balancer.paths("POST", "/v0/nodes/challenge"))

        await eventually(challenged, timeout=30)
        ctx = AppContext(balancer_settings(tmp_path / "balancer"))
        await ctx.start()
        async with aiohttp.ClientSession() as http:
            b = RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
            _, cluster = await b.get("/v0/cluster")
            assert cluster["discovery"] is True and cluster["join_token"] == token

            async def joined() -> list[Any]:
                _, listing = await b.get("/v0/nodes")
                return [n for n in listing if n["status"] == "pending"]

            await eventually(joined, timeout=30)
        assert {s.path for s in fake_balancer.seen} == {"/v0/nodes/challenge"}
        assert not fake_balancer.saw(token)
        assert node.stop() == 0
    finally:
        if node is not None:
            node.kill()
        if ctx is not None:
            await ctx.stop()
        await zc.async_unregister_service(info)
        await zc.async_close()


async def test_the_challenge_route_proves_the_join_token_without_auth(
    balancer: RunningBalancer,
) -> None:
    _, cluster = await balancer.get("/v0/cluster")
    nonce = "n" * 16
    status, body = await balancer.post("/v0/nodes/challenge", {"nonce": nonce}, headers={})
    address = balancer.url.removeprefix("http://")
    assert status == 200
    assert body == {"proof": join_proof(cluster["join_token"], nonce, address), "address": address}
    for bad in ("short", "x" * 129, "has space and more", 5, None):
        status, body = await balancer.post("/v0/nodes/challenge", {"nonce": bad}, headers={})
        assert status == 400 and body["error"]["param"] == "nonce"


async def test_an_impostor_relaying_the_challenge_to_the_real_balancer_is_caught(
    balancer: RunningBalancer,
) -> None:
    """An impostor on the LAN forwards the node's nonce to the real balancer and hands back
    its genuine proof: the proof names the real balancer's address, not the one dialled."""
    _, cluster = await balancer.get("/v0/cluster")
    received: list[str] = []

    async def relay(request: web.Request) -> web.Response:
        received.append(request.path)
        async with balancer.http.post(
            balancer.url + request.path, data=await request.read(), headers=request.headers
        ) as r:
            return web.json_response(await r.json(), status=r.status)

    app = web.Application()
    app.router.add_post("/v0/nodes/challenge", relay)
    app.router.add_post("/v0/nodes", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    impostor = BalancerClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        with pytest.raises(BalancerNotTrusted, match="relaying"):
            await impostor.prove(cluster["join_token"], bound=True)
        assert received == ["/v0/nodes/challenge"]  # the token itself was never sent
        # The real balancer, dialled at its own address, passes the same check.
        real = BalancerClient(balancer.url)
        await real.prove(cluster["join_token"], bound=True)
        await real.close()
    finally:
        await impostor.close()
        await runner.cleanup()
