"""LAN traffic over TLS: the balancer's own certificate, pinned by nodes at join time."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from app.core.tls import fingerprint_of, load_or_create
from app.node.balancer_client import BalancerClient, BalancerNotTrusted, join_proof
from app.node.discovery import find_balancer
from app.ui.client import ApiClient, ApiError
from tests.conftest import CHAT_REPO, RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import hub_entry, register_ready
from tests.node.test_lan_nodes import NodeProcess, join, node_status
from tests.server.test_node_trust import MODEL, beat, chat, ready
from tests.server.test_node_trust import join as join_as_node
from tests.support.waiting import eventually

# A short chat with the generated model, through the TLS balancer.
CHAT = {"model": CHAT_REPO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def cert_fingerprint(data_dir: Path) -> str:
    """sha256 hex of the certificate file the balancer keeps."""
    pem = (data_dir / "tls" / "cert.pem").read_text()
    return fingerprint_of(ssl.PEM_cert_to_DER_cert(pem))


def log_of(node: NodeProcess) -> str:
    """What the node process logged so far."""
    try:
        return (node.data / "logs" / "llmlb.jsonl").read_text()
    except OSError:
        return ""


async def test_a_tls_balancer_serves_https_with_a_certificate_it_keeps(tmp_path: Path) -> None:
    data = tmp_path / "balancer"
    async with run_balancer(balancer_settings(data, tls=True)) as b:
        assert b.url.startswith("https://127.0.0.1:")
        status, cluster = await b.get("/v0/cluster")
        assert status == 200
        first = cluster["tls_fingerprint"]
        assert first == cert_fingerprint(data)
        # A LAN client that trusts the certificate file checks names as usual.
        trusting = ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))
        port = b.ctx.port
        async with aiohttp.ClientSession() as http:
            for host in ("127.0.0.1", "localhost"):
                async with http.get(f"https://{host}:{port}/v1/models", ssl=trusting) as r:
                    assert r.status == 200
            # A client that trusts only the usual CAs is refused: nobody signed it.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(f"https://127.0.0.1:{port}/v1/models")
            # Plain HTTP gets no answer on the TLS port.
            with pytest.raises(aiohttp.ClientError):
                await http.get(f"http://127.0.0.1:{port}/v1/models")
    assert stat.S_IMODE((data / "tls" / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "tls").stat().st_mode) == 0o700
    async with run_balancer(balancer_settings(data, tls=True)) as b:
        _, cluster = await b.get("/v0/cluster")
        assert cluster["tls_fingerprint"] == first  # the same certificate after a restart


async def test_without_tls_nothing_changes(balancer: RunningBalancer, tmp_path: Path) -> None:
    assert balancer.url.startswith("http://")
    _, cluster = await balancer.get("/v0/cluster")
    assert cluster["tls_fingerprint"] is None
    assert not (tmp_path / "data" / "tls").exists()
    nonce = "n" * 16
    _, body = await balancer.post("/v0/nodes/challenge", {"nonce": nonce}, headers={})
    address = balancer.url.removeprefix("http://")
    assert body["proof"] == join_proof(cluster["join_token"], nonce, address)


async def test_the_gui_client_reaches_its_tls_balancer_by_the_fingerprint(
    tmp_path: Path,
) -> None:
    async with run_balancer(balancer_settings(tmp_path / "b", tls=True)) as b:
        pinned = ApiClient(b.url, b.token, fingerprint=b.ctx.tls_fingerprint)
        unpinned = ApiClient(b.url, b.token)
        wrong = ApiClient(b.url, b.token, fingerprint="00" * 32)
        try:
            assert isinstance(await pinned.nodes(), list)
            for client in (unpinned, wrong):
                with pytest.raises(ApiError):
                    await client.nodes()
        finally:
            for client in (pinned, unpinned, wrong):
                await client.close()


async def test_the_local_node_serves_through_its_tls_balancer(
    tmp_path: Path, model_hub: FakeHub
) -> None:
    settings = balancer_settings(tmp_path / "b", tls=True, local_node=True, context_size=512)
    async with run_balancer(settings) as b:
        await register_ready(b)  # the in-process node registered, synced and reported over TLS
        async with b.http.post(b.url + "/v1/chat/completions", json=CHAT) as r:
            assert r.status == 200


async def test_the_proof_names_the_certificate_and_the_node_pins_it(tmp_path: Path) -> None:
    async with run_balancer(balancer_settings(tmp_path / "b", tls=True)) as b:
        _, cluster = await b.get("/v0/cluster")
        token, fingerprint = cluster["join_token"], cluster["tls_fingerprint"]
        client = BalancerClient(b.url)
        try:
            await client.prove(token)
            assert client.fingerprint == fingerprint
        finally:
            await client.close()
        # A node that pinned this certificate will not fall back to plain HTTP.
        downgraded = BalancerClient(f"http://127.0.0.1:{b.ctx.port}", fingerprint=fingerprint)
        try:
            with pytest.raises(BalancerNotTrusted, match="plain HTTP"):
                await downgraded.prove(token)
        finally:
            await downgraded.close()


async def test_a_node_finds_a_tls_balancer_by_mdns_and_dials_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMLB_MDNS_INTERFACES", "127.0.0.1")  # multicast stays on loopback
    monkeypatch.setenv("LLMLB_JOIN_TOKEN", "llmlb-join-fixed-for-this-test")
    async with run_balancer(balancer_settings(tmp_path / "b", tls=True)) as b:
        url = await asyncio.wait_for(find_balancer("llmlb-join-fixed-for-this-test"), 20)
        assert url == f"https://127.0.0.1:{b.ctx.port}"


# -- real node processes -------------------------------------------------------------------------
@pytest.fixture
def nodes() -> Iterator[list[NodeProcess]]:
    """Node processes started by a test, always stopped."""
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.kill()


@pytest.fixture
async def tls_cluster(tmp_path: Path, model_hub: FakeHub) -> AsyncIterator[RunningBalancer]:
    """A TLS balancer without a local node; nodes join it as other machines would."""
    settings = balancer_settings(tmp_path / "balancer", node_offline_after=3.0, tls=True)
    async with run_balancer(settings) as b:
        yield b


@pytest.mark.slow
async def test_a_node_joins_over_https_and_serves_then_refuses_a_changed_certificate(
    tmp_path: Path, model_hub: FakeHub, nodes: list[NodeProcess]
) -> None:
    data = tmp_path / "balancer"
    settings = balancer_settings(data, node_offline_after=3.0, tls=True)
    async with run_balancer(settings) as b:
        node = await join(b, model_hub, tmp_path / "n", nodes)
        await b.post("/v0/models/register", {"repo": CHAT_REPO})

        async def ready() -> bool:
            entry = await hub_entry(b, CHAT_REPO)
            return bool(entry and entry["lifecycle_status"] == "ready")

        await eventually(ready, timeout=40)
        async with b.http.post(b.url + "/v1/chat/completions", json=CHAT) as r:
            assert r.status == 200
            assert r.headers["x-llmlb-node"] == node.node_id
        # The node serves its own API over TLS too; the balancer pinned its certificate.
        _, view = await b.get(f"/v0/nodes/{node.node_id}")
        assert view["url"].startswith("https://127.0.0.1:")
        assert view["tls_fingerprint"] == cert_fingerprint(tmp_path / "n" / "node")
        identity = tmp_path / "n" / "node" / "node.json"
        assert f'"balancer_fingerprint": "{cert_fingerprint(data)}"' in identity.read_text()
        assert node.stop() == 0

    # Someone replaces the balancer's certificate (here: a new one made in its place).
    shutil.rmtree(data / "tls")
    async with run_balancer(settings) as b:
        _, cluster = await b.get("/v0/cluster")
        restarted = NodeProcess(tmp_path / "n", model_hub, b.url, cluster["join_token"])
        nodes.append(restarted.start())

        async def refused() -> bool:
            return "other than the one this node pinned" in log_of(restarted)

        await eventually(refused, timeout=30)
        assert await node_status(b, node.node_id) != "online"
        restarted.kill()

        # The admin accepts the new certificate by giving its fingerprint: the node is back.
        again = NodeProcess(tmp_path / "n", model_hub, b.url, cluster["join_token"])
        again.args += ["--balancer-fingerprint", cluster["tls_fingerprint"].upper()]
        nodes.append(again.start())

        async def back_online() -> bool:
            status = await node_status(b, node.node_id)
            if status == "pending":  # a new port is a new URL: the admin approves it again
                await b.post(f"/v0/nodes/{node.node_id}/approve")
            return status == "online"

        await eventually(back_online, timeout=40)


@pytest.mark.slow
async def test_a_node_pinned_ahead_refuses_another_certificate_at_its_first_join(
    tls_cluster: RunningBalancer, model_hub: FakeHub, tmp_path: Path, nodes: list[NodeProcess]
) -> None:
    _, cluster = await tls_cluster.get("/v0/cluster")
    node = NodeProcess(tmp_path / "n", model_hub, tls_cluster.url, cluster["join_token"])
    node.args += ["--balancer-fingerprint", "ab" * 32]
    nodes.append(node.start())

    async def refused() -> bool:
        return "other than the one this node pinned" in log_of(node)

    await eventually(refused, timeout=30)
    _, listing = await tls_cluster.get("/v0/nodes")
    assert listing == []


class TlsRelay:
    """A man in the middle: terminates TLS with a certificate of its own and forwards every
    request to the real balancer, keeping what it saw."""

    def __init__(self, target: RunningBalancer, cert_dir: Path) -> None:
        self.target = target
        self.certificate = load_or_create(cert_dir, [])
        self.seen: list[tuple[str, str]] = []  # (path, headers and body as text)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _relay(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.seen.append((request.path, f"{dict(request.headers)!r} {raw!r}"))
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self.target.http.request(
            request.method, self.target.url + request.path_qs, data=raw, headers=headers
        ) as r:
            return web.Response(body=await r.read(), status=r.status, content_type=r.content_type)

    async def start(self) -> TlsRelay:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, "127.0.0.1", 0, ssl_context=self.certificate.server_context()
        )
        await site.start()
        self.url = f"https://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.mark.slow
async def test_a_tls_man_in_the_middle_never_gets_the_join_token(
    tls_cluster: RunningBalancer, model_hub: FakeHub, tmp_path: Path, nodes: list[NodeProcess]
) -> None:
    relay = await TlsRelay(tls_cluster, tmp_path / "mitm").start()
    try:
        _, cluster = await tls_cluster.get("/v0/cluster")
        token = cluster["join_token"]
        node = NodeProcess(tmp_path / "n", model_hub, relay.url, token)
        nodes.append(node.start())

        async def challenged_twice() -> bool:
            # The real balancer's genuine proof came back through the relay: the node checked
            # it against the relay's certificate, refused, and asked again later.
            return [p for p, _ in relay.seen].count("/v0/nodes/challenge") >= 2

        await eventually(challenged_twice, timeout=30)
        assert "for the TLS certificate it showed" in log_of(node)
        assert {p for p, _ in relay.seen} == {"/v0/nodes/challenge"}
        assert not any(token in seen for _, seen in relay.seen)
        _, listing = await tls_cluster.get("/v0/nodes")
        assert listing == []
    finally:
        await relay.stop()


async def test_the_balancer_pins_each_nodes_certificate_when_it_calls_the_node(
    tmp_path: Path, fake_hub: FakeHub
) -> None:
    """A node's prompts go only to the certificate the node registered over the pinned channel:
    a server at the node's address showing another certificate never sees them."""
    prompts: list[bytes] = []

    async def completions(request: web.Request) -> web.Response:
        prompts.append(await request.read())
        message = {"role": "assistant", "content": "hello"}
        return web.json_response(
            {
                "id": "c1",
                "object": "chat.completion",
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    certificate = load_or_create(tmp_path / "node", ["127.0.0.1"])
    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificate.server_context()).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with run_balancer(balancer_settings(tmp_path / "b", tls=True)) as b:
            await b.post("/v0/models/register", {"repo": MODEL})
            _, joined = await join_as_node(b, url, tls_fingerprint="ab" * 32)
            await b.post(f"/v0/nodes/{joined['node_id']}/approve")
            await beat(b, joined["node_token"], {"models": [ready()]})
            status, _ = await chat(b)
            assert status == 502 and prompts == []
            # Registered again with the certificate it really shows: its prompts reach it.
            status, _ = await join_as_node(
                b,
                url,
                node_id=joined["node_id"],
                node_token=joined["node_token"],
                tls_fingerprint=certificate.fingerprint,
            )
            assert status == 201
            await beat(b, joined["node_token"], {"models": [ready()]})
            status, answer = await chat(b)
            assert status == 200, answer
            assert len(prompts) == 1 and b"my secret prompt" in prompts[0]
            status, body = await join_as_node(b, url, tls_fingerprint="not hex")
            assert status == 400 and body["error"]["param"] == "tls_fingerprint"
    finally:
        await runner.cleanup()
