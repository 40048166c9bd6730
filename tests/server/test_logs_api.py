"""`GET /v0/logs`: the balancer's structured log and a node's, fetched from the node through
the balancer, filtered by level and keyword, downloaded as text or JSON lines; and a client's
over-long request line logged as one warning, not an error with a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from app.core.logs import setup_logging
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.test_lan_nodes import NodeProcess, join
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually


@pytest.fixture
def logging_to(tmp_path: Path) -> Iterator[Path]:
    """This process logs into the data dir of the `balancer` fixture, as `llmlb serve` does."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    setup_logging(data)
    try:
        yield data
    finally:
        setup_logging(None)


def messages(answer: dict[str, Any]) -> list[str]:
    return [e["message"] for e in answer["entries"]]


async def test_the_balancers_log_filters_by_level_and_keyword(
    logging_to: Path, balancer: RunningBalancer
) -> None:
    log = logging.getLogger("app.server.story")
    log.info("model tiny-chat loaded")
    log.warning("node desk is slow to answer tiny-chat")
    log.error("node desk failed a tiny-chat request")
    log.warning("disk nearly full on desk")

    status, answer = await balancer.get("/v0/logs?level=WARNING&q=TINY-CHAT")
    assert status == 200
    assert answer["source"] == "balancer" and answer["truncated"] is False
    assert messages(answer) == [
        "node desk is slow to answer tiny-chat",
        "node desk failed a tiny-chat request",
    ]
    status, answer = await balancer.get("/v0/logs?source=balancer&level=error&q=desk")
    assert messages(answer) == ["node desk failed a tiny-chat request"]
    entry = answer["entries"][0]
    assert entry["logger"] == "app.server.story" and entry["level"] == "ERROR"
    status, answer = await balancer.get("/v0/logs?q=app.server.story&limit=1")
    assert messages(answer) == ["disk nearly full on desk"]  # the newest
    assert answer["truncated"] is True


async def test_the_log_downloads_as_text_and_as_json_lines(
    logging_to: Path, balancer: RunningBalancer
) -> None:
    log = logging.getLogger("app.server.story")
    log.info("first thing")
    try:
        raise ValueError("a broken thing")
    except ValueError:
        log.exception("second thing")
    query = "/v0/logs?q=thing&format="
    async with balancer.http.get(balancer.url + query + "text", headers=balancer.admin) as r:
        assert r.status == 200
        assert r.content_type == "text/plain"
        assert r.headers["Content-Disposition"] == 'attachment; filename="llmlb-balancer.log"'
        text = await r.text()
    lines = text.splitlines()
    assert lines[0].endswith(" INFO app.server.story: first thing")
    assert lines[1].endswith(" ERROR app.server.story: second thing")
    assert "ValueError: a broken thing" in text  # the traceback follows its line
    async with balancer.http.get(balancer.url + query + "jsonl", headers=balancer.admin) as r:
        assert r.status == 200
        assert r.headers["Content-Disposition"] == 'attachment; filename="llmlb-balancer.jsonl"'
        rows = [json.loads(row) for row in (await r.text()).splitlines()]
    assert [row["message"] for row in rows] == ["first thing", "second thing"]
    assert "ValueError: a broken thing" in rows[1]["exc"]


async def test_bad_parameters_answer_400_in_openai_shape(balancer: RunningBalancer) -> None:
    for query, param in (
        ("level=LOUD", "level"),
        ("since=yesterday", "since"),
        ("until=inf", "until"),
        ("since=20&until=10", "until"),
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=many", "limit"),
        ("format=pdf", "format"),
    ):
        status, answer = await balancer.get(f"/v0/logs?{query}")
        assert status == 400, query
        assert assert_openai_error(answer)["param"] == param
    # Admin access, like every /v0 route.
    status, answer = await balancer.get("/v0/logs", headers={})
    assert status == 401
    assert_openai_error(answer)


async def test_unknown_external_and_unreachable_nodes_answer_clearly(
    balancer: RunningBalancer,
) -> None:
    status, answer = await balancer.get("/v0/logs?source=no-such-node")
    assert status == 404
    assert_openai_error(answer, "node_not_found")

    _, external = await balancer.post(
        "/v0/nodes/external", {"name": "vLLM box", "base_url": "http://127.0.0.1:9/v1"}
    )
    status, answer = await balancer.get(f"/v0/logs?source={external['node_id']}")
    assert status == 400
    assert "this node's logs are not reachable from llmlb" in answer["error"]["message"]

    # A node that registered and then went away (nothing listens at its address).
    _, gone = await balancer.post("/v0/nodes", {"url": "http://127.0.0.1:9", "name": "gone"})
    status, answer = await balancer.get(f"/v0/logs?source={gone['node_id']}")
    assert status == 502
    assert (
        "node 'gone' did not answer" in assert_openai_error(answer, "node_unavailable")["message"]
    )

    # A node waiting for approval is not asked.
    _, join_info = await balancer.get("/v0/cluster")
    join_header = {"Authorization": f"Bearer {join_info['join_token']}"}
    _, pending = await balancer.post(
        "/v0/nodes", {"url": "http://127.0.0.1:9", "name": "new"}, headers=join_header
    )
    status, answer = await balancer.get(f"/v0/logs?source={pending['node_id']}")
    assert status == 503
    assert "pending" in assert_openai_error(answer, "node_offline")["message"]


async def test_this_computers_node_shows_the_node_records_of_the_shared_log(
    logging_to: Path, balancer: RunningBalancer
) -> None:
    local = {"url": "http://127.0.0.1:9", "name": "this computer", "local": True}
    _, node = await balancer.post("/v0/nodes", local)
    logging.getLogger("app.node.engine").warning("slot 0 is busy")
    logging.getLogger("app.server.proxy").warning("the balancer's own busy line")
    logging.getLogger("llama.cpp").warning("llama.cpp: the KV cache is busy")
    logging.getLogger("app.nodes_elsewhere").warning("a busy line of another module")
    status, answer = await balancer.get(f"/v0/logs?source={node['node_id']}&q=busy")
    assert status == 200
    assert answer["source"] == node["node_id"]
    assert messages(answer) == ["slot 0 is busy", "llama.cpp: the KV cache is busy"]


@pytest.fixture
async def hostile_node() -> AsyncIterator[tuple[str, list[Any]]]:
    """A server posing as a node: `/node/logs` answers the next body in the list."""
    bodies: list[Any] = []

    async def logs(request: web.Request) -> web.StreamResponse:
        body = bodies.pop(0)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        for start in range(0, len(raw), 32 * 1024):  # in pieces, as a long answer arrives
            await answer.write(raw[start : start + 32 * 1024])
            await asyncio.sleep(0.001)
        await answer.write_eof()
        return answer

    app = web.Application()
    app.router.add_get("/node/logs", logs)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", bodies
    finally:
        await runner.cleanup()


async def test_a_nodes_answer_is_checked_and_filtered_again(
    balancer: RunningBalancer, hostile_node: tuple[str, list[Any]]
) -> None:
    url, bodies = hostile_node
    _, node = await balancer.post("/v0/nodes", {"url": url, "name": "liar"})
    good = {"at": 5.0, "level": "ERROR", "logger": "app.node.x", "message": "asked for"}
    noise = {"at": 6.0, "level": "DEBUG", "logger": "app.node.x", "message": "not asked for"}
    bodies += [
        {"source": "x", "entries": [good, noise], "truncated": False},
        b"<html>not json</html>",
        {"entries": "all of them", "truncated": False},
        {"entries": [{**good, "at": "noon"}], "truncated": False},
        {"entries": [{**good, "exc": 5}], "truncated": False},
        {"entries": [good] * 5001, "truncated": False},
    ]
    status, answer = await balancer.get(f"/v0/logs?source={node['node_id']}&level=ERROR")
    assert status == 200
    assert answer == {"source": node["node_id"], "entries": [good], "truncated": False}
    for _ in range(5):
        status, answer = await balancer.get(f"/v0/logs?source={node['node_id']}")
        assert status == 502
        assert "in a form llmlb does not read" in assert_openai_error(answer, "bad_node")["message"]
    # A long answer arrives in many pieces and is read whole.
    many = [{**good, "message": f"line {i} " + "x" * 200} for i in range(3000)]
    bodies.append({"entries": many, "truncated": True})
    status, answer = await balancer.get(f"/v0/logs?source={node['node_id']}&limit=5000")
    assert status == 200
    assert answer["entries"] == many and answer["truncated"] is True
    # One too large is refused without being held.
    bodies.append(b'{"entries": ["' + b"x" * (17 * 1024 * 1024) + b'"]}')
    status, answer = await balancer.get(f"/v0/logs?source={node['node_id']}")
    assert status == 502
    assert "larger than llmlb reads" in assert_openai_error(answer, "bad_node")["message"]


async def long_request_line(url: str) -> bytes:
    """Send a request line over aiohttp's 8190-byte limit; the status line answered."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(b"GET /health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return status_line


async def test_an_over_long_request_line_is_one_warning_without_a_traceback(
    logging_to: Path, balancer: RunningBalancer
) -> None:
    assert (await long_request_line(balancer.url)).split(b" ")[1] == b"400"

    async def warned() -> list[dict[str, Any]]:
        _, answer = await balancer.get("/v0/logs?q=aiohttp.server")
        return list(answer["entries"])

    [entry] = await eventually(warned)
    assert entry["level"] == "WARNING"
    assert entry["message"].startswith("malformed request from 127.0.0.1 answered 400: LineTooLong")
    assert len(entry["message"]) < 300 and "\n" not in entry["message"] and "exc" not in entry
    _, errors = await balancer.get("/v0/logs?level=ERROR")
    assert errors["entries"] == []


# -- a real node in its own process ----------------------------------------------------------
@pytest.fixture
def nodes() -> Iterator[list[NodeProcess]]:
    """Node processes started by a test, always stopped."""
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.kill()


@pytest.mark.slow
async def test_a_nodes_own_log_is_fetched_through_the_balancer_and_filtered(
    tmp_path: Path, model_hub: FakeHub, nodes: list[NodeProcess]
) -> None:
    async with run_balancer(balancer_settings(tmp_path / "balancer")) as b:
        node = await join(b, model_hub, tmp_path / "n1", nodes)
        source = f"/v0/logs?source={node.node_id}"

        async def registered() -> list[str]:
            status, answer = await b.get(f"{source}&level=INFO&q=REGISTERED WITH THE BALANCER")
            return messages(answer) if status == 200 else []

        found = await eventually(registered, timeout=30)
        assert all("registered with the balancer as" in m for m in found)
        _, everything = await b.get(source)
        assert everything["source"] == node.node_id
        assert {e["level"] for e in everything["entries"]} >= {"INFO"}

        # Someone sends the node an over-long request line: one warning, in the node's log.
        _, view = await b.get(f"/v0/nodes/{node.node_id}")
        assert (await long_request_line(view["url"])).split(b" ")[1] == b"400"

        async def warned() -> list[dict[str, Any]]:
            _, answer = await b.get(f"{source}&level=WARNING&q=malformed")
            return list(answer["entries"])

        [warning] = await eventually(warned, timeout=10)
        assert warning["logger"] == "aiohttp.server" and "exc" not in warning
        _, info_only = await b.get(f"{source}&level=WARNING")
        assert all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in info_only["entries"])
        async with b.http.get(f"{b.url}{source}&format=text", headers=b.admin) as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"].endswith(f'llmlb-{node.node_id}.log"')
            assert "registered with the balancer as" in await r.text()
