"""A node killed mid-download resumes from its partial file (FR-7), proven by the Hub's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_FILE, CHAT_REPO
from tests.support.waiting import eventually_sync
from tests.test_main import free_port, llmlb, start_serving

pytestmark = pytest.mark.slow
TOKEN = "resume-test-token"


def start(
    data: Path, port: int, hub: FakeHub, preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[str]:
    """`llmlb serve` on `port` with the fake Hub, waited for until it answers (`preexec_fn`
    runs in the child before it starts: limits for it)."""
    env = {**os.environ, "HF_ENDPOINT": hub.url, "LLMLB_ADMIN_TOKEN": TOKEN}
    command = llmlb("serve", "--port", str(port), "--data-dir", str(data))
    return start_serving(command, port, env, preexec_fn)


def call(port: int, path: str, body: object = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def node_state(port: int, name: str) -> dict[str, object]:
    models = call(port, "/v0/models")
    assert isinstance(models, list)
    entry = next(m for m in models if m["id"] == name)
    nodes = entry["nodes"]
    return nodes[0] if nodes else {"state": "registered", "downloaded_bytes": 0}


def test_sigkill_mid_download_resumes_with_a_range_request(
    tmp_path: Path, tiny_models: dict[str, bytes]
) -> None:
    data = tiny_models["chat"] * 4  # a few MB, so part of it is surely on disk at the kill
    hub = FakeHub([FakeRepo(CHAT_REPO, {CHAT_FILE: data})]).start()
    hub.bytes_per_second = len(data) / 8
    port = free_port()
    folder = tmp_path / "d" / "node" / "models" / "tiny--chat-gguf"
    partial = folder / (CHAT_FILE + ".partial")
    proc = start(tmp_path / "d", port, hub)
    try:
        answer = call(port, "/v0/models/register", {"repo": CHAT_REPO})
        assert answer["name"] == CHAT_REPO

        def going() -> bool:
            on_disk = partial.stat().st_size if partial.exists() else 0
            return (
                node_state(port, CHAT_REPO)["state"] == "downloading" and on_disk > len(data) // 4
            )

        eventually_sync(going, timeout=30)
        proc.send_signal(signal.SIGKILL)  # no clean-up, like a power cut for the process
        proc.wait(10)
    finally:
        proc.kill()
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    assert not (folder / CHAT_FILE).exists()  # never a half file under the final name
    first_requests = len(hub.file_requests(CHAT_FILE))

    hub.bytes_per_second = None
    proc = start(tmp_path / "d", port, hub)
    try:
        eventually_sync(lambda: node_state(port, CHAT_REPO)["state"] == "ready", timeout=30)
        resumed = hub.file_requests(CHAT_FILE)[first_requests:]
        assert [r.range for r in resumed] == [f"bytes={kept}-"]  # only the missing bytes
        assert (folder / CHAT_FILE).read_bytes() == data
        assert not partial.exists()
        models = call(port, "/v1/models")
        assert [m["id"] for m in models["data"]] == [CHAT_REPO]
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    finally:
        proc.kill()
        hub.stop()
    assert proc.returncode == 0
