"""The balancer trusts no node: what a node (or anyone holding a join token) sends is checked,
bounded and kept away from /v1 clients until an admin lets the node in."""

from __future__ import annotations

import logging
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from app.core.events import Event, NodeChanged
from app.db.hashing import hash_secret
from app.server.discovery import Discovery
from app.server.heartbeat import Heartbeat
from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.fakes.fake_openai import FakeOpenAI
from tests.server.test_models_api import assert_openai_error
from tests.support.waiting import eventually

MODEL = "acme/one-gguf"


async def join(b: RunningBalancer, url: str = "http://127.0.0.1:9", **body: Any) -> Any:
    """Register as a LAN node would, with the join token: (status, answer)."""
    _, cluster = await b.get("/v0/cluster")
    headers = {"Authorization": f"Bearer {cluster['join_token']}"}
    return await b.post("/v0/nodes", {"url": url, "name": "box", **body}, headers=headers)


async def beat(b: RunningBalancer, token: str, body: dict[str, Any]) -> Any:
    """One heartbeat with this node token: (status, answer)."""
    return await b.post("/v0/health", body, headers={"X-Node-Token": token})


async def raw_beat(b: RunningBalancer, token: str, text: str) -> tuple[int, Any]:
    """A heartbeat whose JSON text is sent as it is (1e999, NaN...)."""
    headers = {"X-Node-Token": token, "Content-Type": "application/json"}
    async with b.http.post(b.url + "/v0/health", data=text, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def node(b: RunningBalancer, node_id: str) -> dict[str, Any]:
    _, view = await b.get(f"/v0/nodes/{node_id}")
    return dict(view)


def ready(name: str = MODEL) -> dict[str, Any]:
    return {"name": name, "state": "ready", "downloaded_bytes": 10, "total_bytes": 10}


async def chat(b: RunningBalancer, model: str = MODEL) -> tuple[int, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "my secret prompt"}]}
    return await b.post("/v1/chat/completions", body, headers={})


# -- 1. node URLs --------------------------------------------------------------------
async def test_a_node_url_must_be_an_origin(balancer: RunningBalancer) -> None:
    for url in (
        "http://127.0.0.1:8080/v1/chat",
        "http://127.0.0.1:8080/?x=1",
        "http://127.0.0.1:8080/#frag",
        "http://user:pw@127.0.0.1:8080",
        "http://127.0.0.1:8080?",
        "ftp://127.0.0.1:8080",
        "http://127.0.0.1:0",
        "http://127.0.0.1:70000",
        "http://127.0.0.1:port",
        "http://exa mple.com",
        "http://example.com\n.evil",
        "http://0.0.0.0:8080",
        "http://224.0.0.251:5353",
        "http://",
        "http:///x",
        "http://-bad-.example",
        5,
        None,
    ):
        status, body = await join(balancer, url)  # type: ignore[arg-type]
        assert status == 400, (url, body)
        assert assert_openai_error(body)["param"] == "url"
    status, body = await join(balancer, "http://Node-1.lan:8080/")
    assert status == 201
    assert (await node(balancer, body["node_id"]))["url"] == "http://node-1.lan:8080"
    status, body = await join(balancer, "https://[fd00::1]:443")
    assert status == 201


async def test_an_external_base_url_is_an_origin_and_a_plain_base_path(
    balancer: RunningBalancer,
) -> None:
    balancer.ctx.external.poll_interval = 3600
    for url in (
        "http://127.0.0.1:8000/v1?key=1",
        "http://127.0.0.1:8000/v1#x",
        "http://me:pw@127.0.0.1:8000/v1",
        "http://127.0.0.1:8000/llm/../admin/v1",
        "http://127.0.0.1:8000/llm/%2e%2e/v1",
    ):
        status, body = await balancer.post("/v0/nodes/external", {"name": "x", "base_url": url})
        assert status == 400, (url, body)
        assert assert_openai_error(body)["param"] == "base_url"
    status, body = await balancer.post(
        "/v0/nodes/external", {"name": "x", "base_url": "http://127.0.0.1:8000/v1/"}
    )
    assert status == 201 and body["url"] == "http://127.0.0.1:8000"
    # An admin may add a server that sits behind a reverse proxy, under a base path.
    status, body = await balancer.post(
        "/v0/nodes/external", {"name": "y", "base_url": "https://127.0.0.1:8443/llm/v1"}
    )
    assert status == 201 and body["url"] == "https://127.0.0.1:8443/llm"


async def test_an_approved_node_that_moves_waits_for_approval_again(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    """The SSRF: an approved node re-registered at another address got users' prompts."""
    status, _ = await balancer.post("/v0/models/register", {"repo": MODEL})
    assert status == 201
    _, joined = await join(balancer, "http://127.0.0.1:9")
    node_id, token = joined["node_id"], joined["node_token"]
    await balancer.post(f"/v0/nodes/{node_id}/approve")
    _, answer = await beat(balancer, token, {"models": [ready()]})
    assert answer["status"] == "online"
    # Re-registering at the same address keeps the approval.
    status, again = await join(balancer, "http://127.0.0.1:9", node_id=node_id, node_token=token)
    assert status == 201 and again["status"] == "registering"
    events: list[Event] = []
    balancer.ctx.bus.subscribe(events.append)
    async with FakeOpenAI([MODEL]) as attacker:
        status, moved = await join(balancer, attacker.url, node_id=node_id, node_token=token)
        assert status == 201 and moved["node_id"] == node_id and moved["status"] == "pending"
        assert NodeChanged(node_id, "pending") in events
        _, answer = await beat(balancer, token, {"models": [ready()]})
        assert answer["status"] == "pending"
        status, body = await chat(balancer)
        assert status == 503, body
        assert attacker.calls == 0  # no prompt went to the new address
        view = await node(balancer, node_id)
        assert view["status"] == "pending" and view["url"] == attacker.url
        # Once the admin approves the new address, it serves.
        await balancer.post(f"/v0/nodes/{node_id}/approve")
        await beat(balancer, token, {"models": [ready()]})
        status, _ = await chat(balancer)
        assert status == 200 and attacker.calls == 1


# -- 2. reported numbers and text ----------------------------------------------------
async def test_a_node_cannot_claim_all_the_traffic_with_its_slots(
    balancer: RunningBalancer,
) -> None:
    _, joined = await join(balancer)
    await balancer.post(f"/v0/nodes/{joined['node_id']}/approve")
    _, _ = await beat(balancer, joined["node_token"], {"slots": 10**9, "free_slots": 10**9})
    view = await node(balancer, joined["node_id"])
    assert view["metrics"]["slots"] == 64 and view["metrics"]["free_slots"] == 64
    assert balancer.ctx.nodes.nodes[joined["node_id"]].capacity == 64
    for junk in (0, -3, "8", True, 2.5, None):
        await beat(balancer, joined["node_token"], {"slots": junk, "free_slots": 5})
        view = await node(balancer, joined["node_id"])
        assert view["metrics"]["slots"] == 1 and view["metrics"]["free_slots"] == 1


async def test_junk_in_a_heartbeat_is_a_400_or_cleaned_never_a_500(
    balancer: RunningBalancer,
) -> None:
    _, joined = await join(balancer)
    token, node_id = joined["node_token"], joined["node_id"]
    await balancer.post(f"/v0/nodes/{node_id}/approve")
    status, _ = await raw_beat(balancer, token, '{"system": {"cpu_count": 1e999, "evil": "x"}}')
    assert status == 200
    assert (await node(balancer, node_id))["metrics"]["system"] == {"cpu_count": 0}
    for text in (
        '{"active_requests": "x", "ready_models": "x", "loaded_models": [1, null, "a"]}',
        '{"system": {"load_average": NaN}, "sync_state": 3, "node_id": null}',
        '{"sync_progress": {"downloaded_bytes": 1e999, "model_id": 5}, "free_slots": "x"}',
        '{"devices": [{"name": "gpu", "total_bytes": "x", "utilization": -Infinity}, 5]}',
        '{"models": [{"name": "m", "downloaded_bytes": "x", "total_bytes": 1e999}]}',
        '{"models": [{"name": "m", "downloaded_bytes": NaN, "total_bytes": -Infinity}]}',
        '{"models": [{"name": "m", "downloaded_bytes": 1000000000000000000000000000000}]}',
        '{"models": [{"name": "m", "downloaded_bytes": true, "error": {"a": 1}, "path": [1]}]}',
        '{"models": [{"name": "m", "state": "hacked"}], "system": [1], "sync_progress": 7}',
    ):
        status, body = await raw_beat(balancer, token, text)
        assert status == 200, (text, body)
    view = await node(balancer, node_id)
    assert view["models"] == [
        {
            "name": "m",
            "state": "pending",
            "downloaded_bytes": 0,
            "total_bytes": 0,
            "error": None,
            "path": None,
        }
    ]
    for text in (
        '{"models": {"name": "m"}}',
        '{"models": ["m"]}',
        '{"models": [{"state": "ready"}]}',
        '{"loaded_models": {"a": 1}}',
        "[1, 2]",
    ):
        status, body = await raw_beat(balancer, token, text)
        assert status == 400, (text, body)
        assert_openai_error(body)


async def test_node_text_is_cleaned_and_bounded(balancer: RunningBalancer) -> None:
    status, joined = await join(
        balancer,
        name="box\nINFO forged log line\x1b[31m" + "x" * 500,
        runtime_version="v\r\n" * 1000,
        gpu_devices=["RTX\x00 4090" + "x" * 1000, 5, None] + ["g"] * 500,
        supported_runtimes=["llama_cpp"] * 3,
        llmlb_version=["not a string"],
    )
    assert status == 201
    token, node_id = joined["node_token"], joined["node_id"]
    view = await node(balancer, node_id)
    assert "\n" not in view["name"] and "\x1b" not in view["name"] and len(view["name"]) <= 100
    assert view["name"].startswith("boxINFO forged log line[31m")
    assert "\n" not in view["runtime_version"] and len(view["runtime_version"]) <= 200
    assert view["gpu_devices"][0].startswith("RTX 4090") and len(view["gpu_devices"][0]) == 200
    assert len(view["gpu_devices"]) <= 64 and view["supported_runtimes"] == ["llama_cpp"]
    assert view["llmlb_version"] is None
    huge = "\u202e" + "e" * 600  # a right-to-left override and too much text
    # (Bodies stay small here: read_raw_json takes only what arrived of a larger one.)
    status, answer = await beat(
        balancer,
        token,
        {
            "models": [
                {"name": f"m{i}", "state": "error", "error": huge, "path": "p" * 1100}
                for i in range(3)
            ],
            "loaded_models": ["x" * 300] * 100,
        },
    )
    assert status == 200, answer
    view = await node(balancer, node_id)
    assert all(len(m["error"]) == 500 and "\u202e" not in m["error"] for m in view["models"])
    assert all(len(m["path"]) == 1024 for m in view["models"])
    assert len(view["metrics"]["loaded_models"]) == 1  # 100 copies of one name
    status, _ = await beat(balancer, token, {"models": [{"name": f"m{i}"} for i in range(300)]})
    assert status == 200
    assert len((await node(balancer, node_id))["models"]) == 256
    for body in ({"gpu_devices": "RTX"}, {"supported_runtimes": {"a": 1}}):
        status, answer = await join(balancer, **body)
        assert status == 400 and assert_openai_error(answer)["param"] in body


async def test_names_are_cleaned_on_rename_and_in_the_log(
    balancer: RunningBalancer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.server.nodes")
    _, joined = await join(balancer, name="a\nWARNING node x approved by admin")
    assert not any("\nWARNING" in r.getMessage() for r in caplog.records)
    status, view = await balancer.put(f"/v0/nodes/{joined['node_id']}", {"name": " desk\n2\t "})
    assert status == 200 and view["name"] == "desk2"
    status, body = await balancer.put(f"/v0/nodes/{joined['node_id']}", {"name": "\n\x07"})
    assert status == 400 and assert_openai_error(body)["param"] == "name"


def test_the_heartbeat_parser_never_raises_on_scalar_junk() -> None:
    junk: list[Any] = [None, True, -1, 1e308, float("nan"), "x", [1], {"a": 1}, 10**400]
    for value in junk:
        beat = Heartbeat.parse(
            {
                "models": [{"name": "m", "downloaded_bytes": value, "error": value}],
                "active_requests": value,
                "ready_models": value,
                "sync_state": value,
                "sync_progress": value,
                "system": value,
                "slots": value,
                "free_slots": value,
            }
        )
        assert 1 <= beat.slots <= 64 and 0 <= beat.free_slots <= beat.slots
        assert beat.models[0].downloaded_bytes >= 0


# -- 3. only live nodes' reports reach /v1 -----------------------------------------
async def test_a_pending_nodes_reports_never_reach_v1_clients(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    await balancer.post("/v0/models/register", {"repo": MODEL})
    _, joined = await join(balancer)
    token, node_id = joined["node_token"], joined["node_id"]
    lie = "visit http://evil.example to fix"
    await beat(balancer, token, {"models": [{"name": MODEL, "state": "error", "error": lie}]})
    status, body = await chat(balancer)
    assert status == 503 and lie not in str(body)
    assert assert_openai_error(body, "no_capable_nodes")
    # The admin still sees what the node said.
    assert (await node(balancer, node_id))["models"][0]["error"] == lie
    _, models = await balancer.get("/v0/models")
    row = next(m for m in models if m["id"] == MODEL)
    assert row["nodes"][0]["error"] == lie and row["nodes"][0]["node_online"] is False
    report = {"name": MODEL, "state": "downloading", "downloaded_bytes": 5, "total_bytes": 10}
    await beat(balancer, token, {"models": [report]})
    status, body = await chat(balancer)
    assert status == 503 and "downloading" not in body["error"]["message"]
    await beat(balancer, token, {"models": [ready(), ready("evil/model")]})
    _, listed = await balancer.get("/v1/models", headers={})
    assert listed["data"] == []
    # Once approved, its reports count: its error, then its models.
    await balancer.post(f"/v0/nodes/{node_id}/approve")
    await beat(balancer, token, {"models": [{"name": MODEL, "state": "error", "error": "oom"}]})
    status, body = await chat(balancer)
    assert status == 503 and assert_openai_error(body, "model_error")["message"].endswith("oom")
    await beat(balancer, token, {"models": [ready(), ready("evil/model")]})
    _, listed = await balancer.get("/v1/models", headers={})
    # ...but an ordinary node cannot add a model nobody registered.
    assert [m["id"] for m in listed["data"]] == [MODEL]
    status, _ = await balancer.get("/v1/models/evil/model", headers={})
    assert status == 404


# -- 4. pending tokens read nothing --------------------------------------------------
async def test_a_pending_nodes_token_reads_nothing(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    await balancer.post("/v0/models/register", {"repo": MODEL})
    _, joined = await join(balancer)
    headers = {"X-Node-Token": joined["node_token"]}
    manifest = f"/v0/models/registry/{MODEL}/manifest.json"
    for path in ("/v0/models", manifest):
        status, body = await balancer.get(path, headers=headers)
        assert status == 401, body
        assert_openai_error(body)
    await balancer.post(f"/v0/nodes/{joined['node_id']}/approve")
    for path in ("/v0/models", manifest):
        status, _ = await balancer.get(path, headers=headers)
        assert status == 200
    status, _ = await balancer.get("/v0/nodes", headers=headers)
    assert status == 401  # a node reads the model list and manifests, nothing else


# -- 5. joins are limited --------------------------------------------------------------
async def test_wrong_join_tokens_are_rate_limited_per_address(balancer: RunningBalancer) -> None:
    wrong = {"Authorization": "Bearer guess"}
    body = {"url": "http://127.0.0.1:9"}
    for _ in range(10):
        status, _ = await balancer.post("/v0/nodes", body, headers=wrong)
        assert status == 401
    async with balancer.http.post(balancer.url + "/v0/nodes", json=body, headers=wrong) as r:
        assert r.status == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert_openai_error(await r.json(), "rate_limited")
    status, _ = await join(balancer)
    assert status == 429  # even a right guess is not tested while the address is blocked


async def test_pending_nodes_are_capped_and_silent_ones_dropped(
    balancer: RunningBalancer,
) -> None:
    registry = balancer.ctx.nodes
    assert registry is not None
    registry.max_pending = 3
    ids = []
    for port in (9001, 9002, 9003):
        status, joined = await join(balancer, f"http://127.0.0.1:{port}")
        assert status == 201
        ids.append(joined["node_id"])
    status, body = await join(balancer, "http://127.0.0.1:9004")
    assert status == 409
    assert "approve or delete" in assert_openai_error(body, "too_many_pending_nodes")["message"]
    await balancer.post(f"/v0/nodes/{ids[0]}/approve")
    status, _ = await join(balancer, "http://127.0.0.1:9004")
    assert status == 201
    registry.pending_ttl = 0.5

    async def dropped() -> bool:
        _, listing = await balancer.get("/v0/nodes")
        return [n["id"] for n in listing] == [ids[0]]  # the approved one stays

    await eventually(dropped, timeout=10)


# -- 6. mDNS discoveries are bounded --------------------------------------------------
def test_mdns_discoveries_are_bounded_and_cleaned() -> None:
    discovery = Discovery()
    for i in range(100):
        discovery.add(
            f"n{i}\n<b>x</b>._llmlb-node._tcp.local.",
            "10.0.0.1",
            8000 + i,
            {b"version": b"\xff" * 5000, b"models": b",".join([b"m\x00"] * 500)},
        )
    assert len(discovery.nodes) == 64
    entries = list(discovery.nodes.values())
    assert entries[-1]["url"] == "http://10.0.0.1:8099" and entries[0]["url"].endswith(":8036")
    assert "\n" not in entries[0]["name"] and len(entries[0]["version"] or "") <= 64
    assert len(entries[0]["models"]) <= 64 and entries[0]["models"][0] == "m"


# -- 7. node tokens are stored hashed ---------------------------------------------------
async def test_the_database_holds_no_usable_node_credential(tmp_path: Path) -> None:
    settings = balancer_settings(tmp_path / "data")
    async with run_balancer(settings) as b:
        _, joined = await join(b)
        token, node_id = joined["node_token"], joined["node_id"]
        balancer_token = joined["balancer_token"]
        assert balancer_token and balancer_token != token
    db = (tmp_path / "data" / "llmlb.db").read_bytes()
    assert token.encode() not in db and balancer_token.encode() not in db
    with sqlite3.connect(tmp_path / "data" / "llmlb.db") as conn:
        row = conn.execute(
            "SELECT token, token_hash FROM nodes WHERE id = ?", (node_id,)
        ).fetchone()
    assert row == (None, hash_secret(token))
    secret = tmp_path / "data" / "node_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # After a restart the node's token still works, and we present the same balancer token.
    async with run_balancer(settings) as b:
        status, _ = await beat(b, token, {"models": []})
        assert status == 200
        status, again = await join(b, node_id=node_id, node_token=token)
        assert again["node_id"] == node_id and again["balancer_token"] == balancer_token
        assert again["node_token"] == token


async def test_plain_node_tokens_of_an_older_database_are_migrated(tmp_path: Path) -> None:
    settings = balancer_settings(tmp_path / "data")
    async with run_balancer(settings):
        pass
    path = tmp_path / "data" / "llmlb.db"
    with sqlite3.connect(path) as conn:  # the file as schema 3 wrote it
        conn.execute("ALTER TABLE nodes DROP COLUMN token_hash")
        conn.execute(
            "INSERT INTO nodes (id, name, url, kind, status, token, info, tags, notes, "
            "created_at) VALUES ('old', 'old box', 'http://127.0.0.1:9', 'remote', "
            "'online', 'plain-token', '{}', '[]', '', 0)"
        )
        conn.execute("PRAGMA user_version = 3")
    async with run_balancer(settings) as b:
        status, answer = await beat(b, "plain-token", {"models": []})
        assert status == 200 and answer["status"] == "online"
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT token, token_hash FROM nodes WHERE id = 'old'").fetchone()
    assert row == (None, hash_secret("plain-token"))
    assert b"plain-token" not in path.read_bytes()
