"""The balancer's HTTP edge, probed as a heavy user and as an attacker would: whole bodies,
browsers kept out, hostile headers and hostile upstreams answered in the API's own shape."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from app.server import upstream
from app.server.http import INFERENCE_BODY_LIMIT
from app.ui.attachments import MAX_BYTES
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually


async def raw_request(
    url: str, head: str | bytes, parts: list[bytes], gap: float = 0.0
) -> tuple[int, str]:
    """Send a request head and its body in separate TCP segments; (status, body text)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() if isinstance(head, str) else head)
        for part in parts:
            writer.write(part)
            await writer.drain()
            if gap:
                await asyncio.sleep(gap)  # the next segment comes later, as on a slow link
        response = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(errors="replace")


def chat_head(balancer: RunningBalancer, path: str, length: int, extra: str = "") -> str:
    port = balancer.url.rsplit(":", 1)[1]
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n{extra}\r\n"
    )


async def test_a_long_body_in_slow_segments_is_read_whole(balancer: RunningBalancer) -> None:
    # A 2 MB chat body that arrives in pieces 300 ms apart: every byte is read before parsing.
    body = json.dumps(
        {"model": "no-such-model", "messages": [{"role": "user", "content": "x" * 2_000_000}]}
    ).encode()
    parts = [body[:20_000], body[20_000:1_000_000], body[1_000_000:]]
    status, text = await raw_request(
        balancer.url, chat_head(balancer, "/v1/chat/completions", len(body)), parts, gap=0.3
    )
    assert status == 404, text  # parsed whole: it got as far as looking the model up
    assert json.loads(text)["error"]["code"] == "model_not_found"
    # The Playground's conversation save reads whole too.
    _, chat = await balancer.post("/v0/conversations", {"title": "long"})
    message = json.dumps({"role": "user", "content": "y" * 3_000_000}).encode()
    status, text = await raw_request(
        balancer.url,
        chat_head(balancer, f"/v0/conversations/{chat['id']}/messages", len(message))[:-2]
        + f"Authorization: Bearer {balancer.token}\r\n\r\n",
        [message[:10_000], message[10_000:]],
        gap=0.3,
    )
    assert status == 201, text
    _, saved = await balancer.get(f"/v0/conversations/{chat['id']}")
    assert len(saved["messages"][0]["content"]) == 3_000_000


async def test_bodies_past_the_limit_are_refused_with_413(balancer: RunningBalancer) -> None:
    big = {"model_id": "x" * (1024 * 1024 + 10)}
    status, body = await balancer.post("/v0/models/register", big)
    assert status == 413
    assert_openai_error(body, "payload_too_large")

    # Chunked (no Content-Length): the cap applies while reading.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model_id": "'
        for _ in range(20):
            yield b"y" * 100_000
        yield b'"}'

    async with balancer.http.post(
        balancer.url + "/v0/models/register",
        data=chunks(),
        headers={**balancer.admin, "Content-Type": "application/json"},
    ) as r:
        assert r.status == 413
        assert_openai_error(await r.json(), "payload_too_large")


def test_the_attachment_promise_fits_the_limits() -> None:
    # A 100 MB image travels as base64 (4/3 of its size) inside a chat body.
    assert (MAX_BYTES * 4) // 3 + 1024 * 1024 < INFERENCE_BODY_LIMIT


async def test_web_pages_cannot_use_the_endpoint(balancer: RunningBalancer) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    url = balancer.url + "/v1/chat/completions"
    # A page on another site posts text/plain (no preflight needed in a browser): refused.
    async with balancer.http.post(
        url,
        data=body,
        headers={"Content-Type": "text/plain", "Origin": "https://attacker.example"},
    ) as r:
        assert r.status == 403
        assert_openai_error(await r.json(), "origin_not_allowed")
    # Without an Origin it is no browser, but the types a page sends unasked stay refused.
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        async with balancer.http.post(url, data=body, headers={"Content-Type": kind}) as r:
            assert r.status == 415
            error = await r.json()
            assert_openai_error(error, "unsupported_media_type")
            assert "Content-Type: application/json" in error["error"]["message"]
    # A script that labels its body loosely (aiohttp: application/octet-stream) is served.
    async with balancer.http.post(url, data=body.encode()) as r:
        assert r.status == 404  # parsed: the model does not exist
    # The preflight is refused for a foreign origin.
    async with balancer.http.options(
        url,
        headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"},
    ) as r:
        assert r.status == 403
        assert "Access-Control-Allow-Origin" not in r.headers


async def test_dns_rebinding_is_refused(balancer: RunningBalancer) -> None:
    for host in ("attacker.example", "attacker.example:32768", "evil.127.0.0.1.nip.io"):
        async with balancer.http.get(balancer.url + "/v1/models", headers={"Host": host}) as r:
            assert r.status == 403, host
            assert_openai_error(await r.json(), "host_not_allowed")
    port = balancer.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "127.0.0.1"):
        async with balancer.http.get(balancer.url + "/v1/models", headers={"Host": host}) as r:
            assert r.status == 200, host


def test_on_the_lan_people_reach_the_machine_by_any_name() -> None:
    from app.server.origin import OriginPolicy

    lan = OriginPolicy.for_host("0.0.0.0", "")
    assert lan.host_allowed("llm.office.lan:32768")  # and every /v1 call needs a key there
    loopback = OriginPolicy.for_host("127.0.0.1", "")
    assert not loopback.host_allowed("llm.office.lan:32768")
    assert loopback.host_allowed("192.168.1.10:32768")  # an IP cannot be re-pointed


async def test_local_pages_and_allowed_origins_get_cors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = balancer_settings(tmp_path / "d", origins="https://app.example, http://tool.lan:*")
    async with run_balancer(settings) as b:
        for origin in ("http://localhost:3000", "https://app.example", "http://tool.lan:8080"):
            async with b.http.options(
                b.url + "/v1/chat/completions",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            ) as r:
                assert r.status == 204, origin
                assert r.headers["Access-Control-Allow-Origin"] == origin
                assert "POST" in r.headers["Access-Control-Allow-Methods"]
                assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
            async with b.http.get(b.url + "/v1/models", headers={"Origin": origin}) as r:
                assert r.status == 200
                assert r.headers["Access-Control-Allow-Origin"] == origin
        for origin in ("https://app.example.evil", "http://tool.lan:80x", "null"):
            async with b.http.get(b.url + "/v1/models", headers={"Origin": origin}) as r:
                assert r.status == 403, origin


async def test_made_up_model_names_are_not_kept(balancer: RunningBalancer) -> None:
    name = "m" * 400_000
    for _ in range(3):
        status, body = await balancer.post(
            "/v1/chat/completions",
            {"model": name, "messages": [{"role": "user", "content": "hi"}]},
            headers={},
        )
        assert status == 404
        assert len(body["error"]["message"]) < 1000
    status, rows = await balancer.get("/v0/requests")
    assert status == 200 and len(rows) == 3
    assert all(len(json.dumps(row)) < 2000 for row in rows)
    async with balancer.http.get(balancer.url + "/metrics") as r:
        assert len(await r.read()) < 100_000


async def test_hostile_headers_and_bodies_get_4xx_not_500(balancer: RunningBalancer) -> None:
    # A key exists, so /v1 checks bearers too.
    await balancer.post("/v0/api-keys", {"name": "k"})
    for path in ("/v0/models", "/v1/models"):
        for token in ("ключ", "tok\udcff"):
            head = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            )
            status, text = await raw_request(
                balancer.url, head.encode("utf-8", "surrogateescape"), []
            )
            assert status == 401, (path, text)
            assert "Traceback" not in text
    # The node protocol's secrets too: a join token and a node token with undecodable bytes.
    for path, header in (("/v0/nodes", "Authorization: Bearer"), ("/v0/health", "X-Node-Token:")):
        body = b'{"url": "http://127.0.0.1:9", "name": "n"}'
        raw_head = (
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            ).encode()
            + header.encode()
            + b" tok\xff\xfe\r\n\r\n"
        )
        status, text = await raw_request(balancer.url, raw_head, [body])
        assert status == 401, (path, text)
        assert "Traceback" not in text
    deep = ("[" * 50_000 + "]" * 50_000).encode()
    for path in ("/v1/chat/completions", "/v0/models/register"):
        async with balancer.http.post(
            balancer.url + path,
            data=deep,
            headers={**balancer.admin, "Content-Type": "application/json"},
        ) as r:
            assert r.status == 400
            body = await r.json()
            assert_openai_error(body, "invalid_request")
            assert "nested too deeply" in body["error"]["message"]


async def test_the_admin_token_never_goes_in_a_url(balancer: RunningBalancer) -> None:
    status, _ = await balancer.get(f"/v0/models?token={balancer.token}", headers={})
    assert status == 401
    # Browsers open the events socket with a short-lived, one-time ticket instead.
    status, answer = await balancer.post("/v0/events/ticket")
    assert status == 200 and answer["expires_in"] == 30
    ws_url = balancer.url.replace("http", "ws") + "/v0/events?ticket=" + answer["ticket"]
    async with balancer.http.ws_connect(ws_url) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with balancer.http.ws_connect(ws_url):
            pass
    assert refused.value.status == 401  # used once


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_dir_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    from app.core.logs import setup_logging

    setup_logging(data)
    try:
        async with run_balancer(balancer_settings(data)) as b:
            await b.post("/v0/api-keys", {"name": "k"})
            assert mode(data) == 0o700
            assert mode(data / "llmlb.db") == 0o600
            for extra in ("llmlb.db-wal", "llmlb.db-shm"):
                if (data / extra).exists():
                    assert mode(data / extra) == 0o600
            assert mode(data / "logs" / "llmlb.jsonl") == 0o600
    finally:
        setup_logging(None)


@asynccontextmanager
async def hostile_node(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """An OpenAI-compatible server (outside our product) that lists model `m` and answers
    chats with `handler`."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def add_external(b: RunningBalancer, url: str) -> None:
    b.ctx.external.poll_interval = 0.1
    status, _ = await b.post("/v0/nodes/external", {"name": "hostile", "base_url": url})
    assert status == 201

    async def listed() -> bool:
        _, models = await b.get("/v1/models", headers={})
        return [m["id"] for m in models["data"]] == ["m"]

    await eventually(listed, timeout=10)


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_node_cannot_serve_html_from_our_origin(balancer: RunningBalancer) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<script>alert(1)</script>", content_type="text/html")

    async with hostile_node(html) as url:
        await add_external(balancer, url)
        async with balancer.http.post(balancer.url + "/v1/chat/completions", json=CHAT) as r:
            assert r.headers["Content-Type"].startswith("application/json")
        async with balancer.http.post(
            balancer.url + "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")


async def test_a_node_answer_past_the_cap_is_refused(
    balancer: RunningBalancer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream, "ANSWER_LIMIT", 1024 * 1024)

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(100):  # 6.4 MB, chunked, no length announced
            await response.write(b"x" * 65536)
        return response

    async with hostile_node(endless) as url:
        await add_external(balancer, url)
        status, body = await balancer.post("/v1/chat/completions", CHAT, headers={})
        assert status == 502
        assert_openai_error(body, "node_answer_too_large")


async def test_a_trickling_node_is_cut_at_the_deadline(tmp_path: Path) -> None:
    stop = asyncio.Event()

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while not stop.is_set():
            await response.write(b": still here\n\n")
            await asyncio.sleep(0.1)
        return response

    async with run_balancer(balancer_settings(tmp_path / "d", upstream_deadline=1.5)) as b:
        async with hostile_node(trickle) as url:
            await add_external(b, url)
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with b.http.post(
                b.url + "/v1/chat/completions", json={**CHAT, "stream": True}
            ) as r:
                text = (await r.read()).decode()
            stop.set()
            assert loop.time() - started < 10
            assert '"code": "node_failed"' in text


async def test_a_silent_connection_is_closed_at_the_header_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import context

    monkeypatch.setattr(context, "HEADER_DEADLINE", 0.5)
    async with run_balancer(balancer_settings(tmp_path / "d")) as b:
        host, port = b.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # the balancer hung up
        writer.close()


async def test_one_client_cannot_hold_every_connection() -> None:
    from app.server.connections import ConnectionGuard, GuardedAppRunner

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    guard = ConnectionGuard(per_client=3, exempt_loopback=False)
    runner = GuardedAppRunner(app, guard)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]

    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await eventually(lambda: guard.open["127.0.0.1"] == 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # refused: closed at once
        writer.close()
        held[0][1].close()
        await eventually(lambda: guard.open["127.0.0.1"] == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(5):
            assert (await reader.read()).endswith(b"hi")
        writer.close()
        for _, w in held[1:]:
            w.close()
    finally:
        await runner.cleanup()


async def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    balancer: RunningBalancer, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = balancer.url.removeprefix("http://").split(":")
    for _ in range(3):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(chat_head(balancer, "/v1/chat/completions", 1000).encode() + b'{"m": 1')
        writer.write_eof()  # it stops sending well before the 1000 bytes it announced
        async with asyncio.timeout(10):
            await reader.read()
        writer.close()
    status, rows = await balancer.get("/v0/requests")
    assert status == 200 and [r["status"] for r in rows] == [400, 400, 400]
    assert "Traceback" not in caplog.text and "Error handling request" not in caplog.text
