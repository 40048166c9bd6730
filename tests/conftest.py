"""Shared fixtures: an isolated environment, the fake Hub, a running balancer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.context import AppContext
from app.core.settings import Settings
from app.db.store import Store
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.support.tiny_gguf import write_embedding_gguf, write_llama_gguf

# Widgets need no display (make test sets this too; a bare `pytest` would abort without it).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REFUSED_ENDPOINT = "http://127.0.0.1:9"  # nothing listens there: "the Hub is unreachable"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's files or reaches the real Hugging Face."""
    home = tmp_path / "home"
    home.mkdir()
    for var in (
        "LLMLB_DATA_DIR",
        "LLMLB_ADMIN_TOKEN",
        "LLMLB_JOIN_TOKEN",
        "LLMLB_CATALOG",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.setenv("HF_ENDPOINT", REFUSED_ENDPOINT)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # Never the user's own keyring: tests that need one install a file keyring in HOME.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


GGUF_BYTES = b"GGUF" + bytes(range(256)) * 64


def default_repos() -> list[FakeRepo]:
    """Repos the model tests register from: one GGUF, several, none, and catalog ones."""
    return [
        FakeRepo("acme/one-gguf", {"README.md": b"# one", "model-Q4_K_M.gguf": GGUF_BYTES}),
        FakeRepo(
            "acme/many-gguf",
            {
                "many-Q4_K_M.gguf": GGUF_BYTES,
                "many-Q8_0.gguf": GGUF_BYTES * 2,
                "mmproj-many-f16.gguf": GGUF_BYTES,
            },
        ),
        FakeRepo("acme/no-gguf", {"model.safetensors": b"\0" * 100, "config.json": b"{}"}),
        FakeRepo(
            "acme/split-gguf",
            {
                "big-Q4_K_M-00001-of-00002.gguf": GGUF_BYTES,
                "big-Q4_K_M-00002-of-00002.gguf": GGUF_BYTES * 3,
            },
        ),
        FakeRepo(
            "bartowski/Qwen_Qwen3-0.6B-GGUF",
            {
                "Qwen_Qwen3-0.6B-Q4_K_M.gguf": GGUF_BYTES,
                "Qwen_Qwen3-0.6B-Q8_0.gguf": GGUF_BYTES * 2,
            },
            downloads=123456,
            likes=78,
        ),
    ]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running fake Hub, selected through HF_ENDPOINT."""
    hub = FakeHub(default_repos()).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        yield hub
    finally:
        hub.stop()


CHAT_REPO = "tiny/chat-gguf"
CHAT_FILE = "tiny-chat-F32.gguf"
ENDLESS_REPO = "tiny/endless-chat-gguf"  # a chat model that practically never ends an answer
EMBED_REPO = "tiny/embed-gguf"
EMBED_FILE = "tiny-embed-F32.gguf"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of a tiny chat model and a tiny embedding model (generated once)."""
    folder = tmp_path_factory.mktemp("gguf")
    chat = write_llama_gguf(folder / CHAT_FILE)
    endless = write_llama_gguf(folder / "endless.gguf", ends=False)
    embed = write_embedding_gguf(folder / EMBED_FILE)
    return {
        "chat": chat.read_bytes(),
        "endless": endless.read_bytes(),
        "embed": embed.read_bytes(),
    }


@pytest.fixture
def model_hub(fake_hub: FakeHub, tiny_models: dict[str, bytes]) -> FakeHub:
    """The fake Hub, also serving the tiny models."""
    fake_hub.add(FakeRepo(CHAT_REPO, {CHAT_FILE: tiny_models["chat"], "README.md": b"# tiny"}))
    fake_hub.add(FakeRepo(ENDLESS_REPO, {CHAT_FILE: tiny_models["endless"]}))
    fake_hub.add(
        FakeRepo(EMBED_REPO, {EMBED_FILE: tiny_models["embed"]}, pipeline_tag="feature-extraction")
    )
    return fake_hub


@dataclass
class RunningBalancer:
    """A balancer on 127.0.0.1 and an admin-authenticated HTTP session to it."""

    ctx: AppContext
    url: str
    token: str
    http: aiohttp.ClientSession

    @property
    def admin(self) -> dict[str, str]:
        """The admin Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        """GET with the admin token; (status, JSON body)."""
        async with self.http.get(self.url + path, headers=kw.pop("headers", self.admin), **kw) as r:
            return r.status, await _body(r)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        """POST JSON with the admin token; (status, JSON body)."""
        async with self.http.post(
            self.url + path, json=body, headers=kw.pop("headers", self.admin), **kw
        ) as r:
            return r.status, await _body(r)

    async def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        """PUT JSON with the admin token; (status, JSON body)."""
        async with self.http.put(
            self.url + path, json=body, headers=kw.pop("headers", self.admin), **kw
        ) as r:
            return r.status, await _body(r)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        """PATCH JSON with the admin token; (status, JSON body)."""
        async with self.http.patch(
            self.url + path, json=body, headers=kw.pop("headers", self.admin), **kw
        ) as r:
            return r.status, await _body(r)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        """DELETE with the admin token; (status, JSON body or None)."""
        async with self.http.delete(
            self.url + path, headers=kw.pop("headers", self.admin), **kw
        ) as r:
            return r.status, await _body(r)


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    if not text:
        return None
    try:
        return await response.json(content_type=None)
    except ValueError:
        return text


def balancer_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test balancer: loopback, a free port, short Hub timeouts."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": data_dir,
        "local_node": False,
        "hf_timeout": 1.5,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def run_balancer(settings: Settings) -> AsyncIterator[RunningBalancer]:
    """Start a balancer with these settings, with an admin HTTP session; stop it after."""
    ctx = AppContext(settings)
    await ctx.start()
    # With TLS the session pins the balancer's own certificate, as its GUI does.
    pin = aiohttp.Fingerprint(bytes.fromhex(ctx.tls_fingerprint)) if ctx.tls_fingerprint else True
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pin)) as http:
        try:
            yield RunningBalancer(ctx, ctx.base_url, ctx.admin_token, http)
        finally:
            await ctx.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real store: a SQLite file in a temp dir, open."""
    store = Store(tmp_path / "s.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def balancer(tmp_path: Path) -> AsyncIterator[RunningBalancer]:
    """A real balancer with a real SQLite file in a temp dir."""
    async with run_balancer(balancer_settings(tmp_path / "data")) as b:
        yield b


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test gets a hard timeout so a hang fails instead of stalling CI."""
    for item in items:
        if not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(int(os.environ.get("LLMLB_TEST_TIMEOUT", "120"))))
