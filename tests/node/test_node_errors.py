"""Broken downloads and broken models end in a readable `error` state; the rest goes on."""

from __future__ import annotations

import resource
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningBalancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_REPO, hub_entry, register_ready
from tests.node.test_resume import call, start
from tests.support.waiting import eventually, eventually_sync
from tests.test_main import free_port


async def error_of(b: RunningBalancer, name: str) -> str:
    async def failed() -> str | None:
        entry = await hub_entry(b, name)
        assert entry is not None
        return entry.get("error") if entry.get("lifecycle_status") == "error" else None

    return str(await eventually(failed, timeout=20))


async def test_a_file_that_is_not_gguf(served: RunningBalancer, model_hub: FakeHub) -> None:
    model_hub.add(FakeRepo("bad/not-gguf", {"fake-Q4_K_M.gguf": b"<html>oops</html>" * 100}))
    status, _ = await served.post("/v0/models/register", {"repo": "bad/not-gguf"})
    assert status == 201
    reason = await error_of(served, "bad/not-gguf")
    assert "not a GGUF file" in reason
    # The error is what inference answers too, and other models still work.
    status, body = await served.post(
        "/v1/chat/completions",
        {"model": "bad/not-gguf", "messages": [{"role": "user", "content": "x"}]},
        headers={},
    )
    assert status == 503 and "not a GGUF file" in body["error"]["message"]
    await register_ready(served)


async def test_a_gguf_cut_short_fails_once_downloaded(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    broken = tiny_models["chat"][:4096]  # the right start, then nothing
    model_hub.add(FakeRepo("bad/cut-gguf", {"cut-Q4_K_M.gguf": broken}))
    await served.post("/v0/models/register", {"repo": "bad/cut-gguf"})
    reason = await error_of(served, "bad/cut-gguf")
    assert "cut-Q4_K_M.gguf is cut short" in reason
    await register_ready(served)


async def test_a_gguf_llama_cpp_cannot_load(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    # A whole, well-formed file of an architecture this llama.cpp does not know.
    key = b"general.architecture"
    at = tiny_models["chat"].index(key) + len(key)
    alien = bytearray(tiny_models["chat"])
    alien[at : at + 20] = alien[at : at + 20].replace(b"llama", b"llamo", 1)
    model_hub.add(FakeRepo("bad/alien-gguf", {"alien-Q4_K_M.gguf": bytes(alien)}))
    await served.post("/v0/models/register", {"repo": "bad/alien-gguf"})
    entry = await eventually(lambda: _state(served, "bad/alien-gguf", "ready"), timeout=20)
    assert entry  # downloaded and verified: the file is what the Hub has
    status, body = await served.post(
        "/v1/chat/completions",
        {"model": "bad/alien-gguf", "messages": [{"role": "user", "content": "x"}]},
        headers={},
    )
    assert status == 500
    assert "llama.cpp could not load bad/alien-gguf" in body["error"]["message"]
    assert "llamo" in body["error"]["message"]  # llama.cpp's own reason
    reason = await error_of(served, "bad/alien-gguf")
    assert "llama.cpp could not load bad/alien-gguf" in reason
    # The process is still up and serving other models.
    await register_ready(served)


async def _state(b: RunningBalancer, name: str, lifecycle: str) -> dict[str, Any] | None:
    entry = await hub_entry(b, name)
    return entry if entry and entry.get("lifecycle_status") == lifecycle else None


async def test_a_file_gone_from_the_hub(served: RunningBalancer, model_hub: FakeHub) -> None:
    repo = model_hub.add(FakeRepo("bad/gone", {"gone-Q4_K_M.gguf": b"GGUF" + b"\0" * 1000}))
    model_hub.bytes_per_second = 1  # hold the download back while the file disappears
    await served.post("/v0/models/register", {"model_id": "qwen3"})  # first in the queue
    await served.post("/v0/models/register", {"repo": "bad/gone"})
    repo.files.clear()
    model_hub.bytes_per_second = None
    await served.delete("/v0/models/qwen3")
    reason = await error_of(served, "bad/gone")
    assert "404" in reason


async def test_a_download_shorter_than_registered(
    served: RunningBalancer, model_hub: FakeHub, tiny_models: dict[str, bytes]
) -> None:
    name = "bad/shrunk"
    repo = model_hub.add(FakeRepo(name, {"s-Q4_K_M.gguf": tiny_models["chat"]}))
    model_hub.bytes_per_second = 1
    await served.post("/v0/models/register", {"model_id": "qwen3"})
    await served.post("/v0/models/register", {"repo": name})
    repo.files["s-Q4_K_M.gguf"] = tiny_models["chat"][:1000]  # the Hub now serves less
    model_hub.bytes_per_second = None
    await served.delete("/v0/models/qwen3")
    reason = await error_of(served, name)
    assert (
        "1000 bytes on Hugging Face" in reason and f"expected {len(tiny_models['chat'])}" in reason
    )


@pytest.mark.slow
def test_a_full_disk_is_an_error_with_the_reason(
    tmp_path: Path, tiny_models: dict[str, bytes]
) -> None:
    hub = FakeHub([FakeRepo(CHAT_REPO, {"tiny-chat-F32.gguf": tiny_models["chat"]})]).start()
    port = free_port()
    # Bytes any one file may grow to: a disk that fills mid-download (the model is ~730 KB; the
    # database's write-ahead log needs a few hundred KB of its own from the start).
    limit = 600_000

    def quota() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    try:
        proc = start(tmp_path / "d", port, hub, preexec_fn=quota)
        try:
            call(port, "/v0/models/register", {"repo": CHAT_REPO})

            def failed() -> dict[str, Any] | None:
                [entry] = [m for m in call(port, "/v0/models") if m["id"] == CHAT_REPO]
                return entry if entry.get("lifecycle_status") == "error" else None

            entry = eventually_sync(failed, timeout=30, interval=0.1)
            assert "disk space" in entry["error"]
            assert proc.poll() is None  # the app is still up
        finally:
            proc.kill()
    finally:
        hub.stop()
