"""Secrets the balancer must send again stay out of its database: the join token and external
servers' API keys live in the OS keyring (or the private fallback file), across restarts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import null
from keyrings.alt.file import PlaintextKeyring

from app.core.vault import FALLBACK_FILE
from tests.conftest import balancer_settings, run_balancer
from tests.fakes.fake_openai import FakeOpenAI
from tests.support.waiting import eventually


@pytest.fixture(params=["os-keyring", "no-keyring"])
def a_keyring(request: pytest.FixtureRequest) -> Iterator[str]:
    before = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring() if request.param == "os-keyring" else null.Keyring())
    try:
        yield request.param
    finally:
        keyring.set_keyring(before)


def database_text(data: Path) -> bytes:
    """Every byte of the database files, WAL included."""
    return b"".join(p.read_bytes() for p in data.glob("llmlb.db*"))


async def test_the_join_token_and_external_keys_stay_out_of_the_database(
    tmp_path: Path, a_keyring: str
) -> None:
    data = tmp_path / "data"
    async with FakeOpenAI(["their-model"], api_key="sk-their-secret-key") as server:
        async with run_balancer(balancer_settings(data)) as b:
            b.ctx.external.poll_interval = 0.1
            _, cluster = await b.get("/v0/cluster")
            token = cluster["join_token"]
            status, _ = await b.post(
                "/v0/nodes/external",
                {"name": "vllm", "base_url": server.url, "api_key": "sk-their-secret-key"},
            )
            assert status == 201
        text = database_text(data)
        assert token.encode() not in text
        assert b"sk-their-secret-key" not in text
        assert (data / FALLBACK_FILE).exists() == (a_keyring == "no-keyring")
        # A restarted balancer still has both: the same join token, and the key works.
        async with run_balancer(balancer_settings(data)) as b:
            b.ctx.external.poll_interval = 0.1
            _, cluster = await b.get("/v0/cluster")
            assert cluster["join_token"] == token

            async def served() -> bool:
                _, models = await b.get("/v1/models", headers={})
                return [m["id"] for m in models["data"]] == ["their-model"]

            await eventually(served, timeout=10)
            _, rotated = await b.post("/v0/cluster/join-token/rotate")
        assert rotated["join_token"].encode() not in database_text(data)


async def test_secrets_an_older_database_held_are_moved_out(tmp_path: Path, a_keyring: str) -> None:
    data = tmp_path / "data"
    async with FakeOpenAI(["m"], api_key="sk-old-key") as server:
        async with run_balancer(balancer_settings(data)) as b:
            await b.post("/v0/nodes/external", {"name": "x", "base_url": server.url})
        # As an older llmlb left it: both secrets in plain text in the database.
        db = sqlite3.connect(data / "llmlb.db")
        with db:
            db.execute("UPDATE nodes SET api_key = 'sk-old-key'")
            db.execute("UPDATE settings SET value = 'llmlb-join-old' WHERE key = 'join_token'")
        db.close()
        assert b"sk-old-key" in database_text(data)
        async with run_balancer(balancer_settings(data)) as b:
            b.ctx.external.poll_interval = 0.1
            _, cluster = await b.get("/v0/cluster")
            assert cluster["join_token"] == "llmlb-join-old"

            async def served() -> bool:
                _, models = await b.get("/v1/models", headers={})
                return [m["id"] for m in models["data"]] == ["m"]

            await eventually(served, timeout=10)  # the moved key still opens the server
        db = sqlite3.connect(data / "llmlb.db")
        db.execute("VACUUM")
        db.close()
        text = database_text(data)
        assert b"sk-old-key" not in text and b"llmlb-join-old" not in text
