"""The GPU code path on a machine without a GPU: llama.cpp's RPC server on loopback is a device
llama.cpp offloads to like a GPU. The probe sees it with its memory, the planner puts every
layer on it (or as many as asked), and the greedy answer is the CPU's.

Every llmlb here runs in its own process: ggml's device list is global to a process, and
llama.cpp aborts a process whose RPC server goes away, so the test process never adds one.
`make test` builds `ggml-rpc-server` from llama-cpp-python's source and names it in
LLMLB_TEST_RPC_SERVER.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_FILE, CHAT_REPO
from tests.support.waiting import eventually_sync
from tests.test_main import free_port, llmlb, wait_until_serving

pytestmark = pytest.mark.slow
TOKEN = "rpc-device-test-token"
DEFAULT_BIN = Path.home() / ".cache" / "llmlb" / "rpc-server-0.3.36" / "ggml-rpc-server"
GREEDY = {
    "messages": [{"role": "user", "content": "Tell me about the sea"}],
    "max_tokens": 24,
    "temperature": 0,
}


def rpc_binary() -> Path:
    """The ggml-rpc-server that `make test` built (a failure under make, a skip without)."""
    named = os.environ.get("LLMLB_TEST_RPC_SERVER")
    path = Path(named) if named else DEFAULT_BIN
    if path.is_file():
        return path
    if named is not None:
        pytest.fail(f"LLMLB_TEST_RPC_SERVER={named!r} is not a built ggml-rpc-server")
    pytest.skip("ggml-rpc-server is not built: `make test` builds it")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def rpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ggml-rpc-server on loopback: its "host:port"."""
    port = free_port()
    log = tmp_path_factory.mktemp("rpc") / "rpc-server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(rpc_binary()), "-H", "127.0.0.1", "-p", str(port), "-t", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        endpoint = f"127.0.0.1:{port}"
        eventually_sync(lambda: proc.poll() is None and listening(port), timeout=20)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def doctor(data: Path, **env: str) -> tuple[int, Any]:
    """`llmlb doctor --json` in its own process: (exit code, report)."""
    run = subprocess.run(
        llmlb("doctor", "--json", "--data-dir", str(data)),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return run.returncode, json.loads(run.stdout)


def test_the_probe_lists_an_rpc_server_as_a_gpu_with_memory(
    rpc_server: str, tmp_path: Path
) -> None:
    code, report = doctor(tmp_path, LLMLB_RPC_SERVERS=rpc_server)
    assert code == 0, report
    assert "RPC" in report["compiled_backends"] and report["gpu_offload"]
    [device] = report["devices"]
    assert device["backend"] == "rpc" and rpc_server in device["name"]
    assert device["total_bytes"] >= device["free_bytes"] > 0


def test_an_rpc_server_that_does_not_answer_is_a_readable_problem(tmp_path: Path) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    code, report = doctor(tmp_path, LLMLB_RPC_SERVERS=nobody)
    assert code == 1  # and not llama.cpp's abort
    assert report["devices"] == []
    assert report["problems"] == [
        f"RPC server {nobody}: nothing answers at {nobody} (is ggml-rpc-server running there?)"
    ]


def serve(data: Path, hub: FakeHub, log: Path, **env: str) -> subprocess.Popen[str]:
    port = free_port()
    environ = {**os.environ, "HF_ENDPOINT": hub.url, "LLMLB_ADMIN_TOKEN": TOKEN, **env}
    environ.setdefault("LLMLB_CONTEXT_SIZE", "512")
    with log.open("w") as out:
        proc = subprocess.Popen(
            llmlb("serve", "--port", str(port), "--data-dir", str(data)),
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc.port = port  # type: ignore[attr-defined]
    wait_until_serving(proc, port)
    return proc


def call(proc: subprocess.Popen[str], path: str, body: object = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{proc.port}{path}",  # type: ignore[attr-defined]
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def registered_and_ready(proc: subprocess.Popen[str], repo: str, timeout: float = 30) -> None:
    """Register `repo` from the fake Hub (unless it is already) and wait until it is ready; a
    model in `error` fails at once."""
    if not any(m["id"] == repo for m in call(proc, "/v0/models")):
        call(proc, "/v0/models/register", {"repo": repo})

    def ready() -> bool:
        entry = next(m for m in call(proc, "/v0/models") if m["id"] == repo)
        assert entry["lifecycle_status"] != "error", entry
        return bool(entry["lifecycle_status"] == "ready")

    eventually_sync(ready, timeout=timeout)


def answer_with(data: Path, hub: FakeHub, log: Path, **env: str) -> tuple[str, list[Any]]:
    """Serve, make sure the tiny model is there, ask it greedily: (text, the local devices)."""
    proc = serve(data, hub, log, **env)
    try:
        registered_and_ready(proc, CHAT_REPO)
        text = call(proc, "/v1/chat/completions", {"model": CHAT_REPO, **GREEDY})
        nodes = call(proc, "/v0/nodes")
        devices = next(n for n in nodes if n["kind"] == "local")["metrics"]["devices"]
        return text["choices"][0]["message"]["content"], devices
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_layers_offload_to_the_rpc_device_and_the_answer_is_the_cpus(
    rpc_server: str, tmp_path: Path, tiny_models: dict[str, bytes]
) -> None:
    hub = FakeHub([FakeRepo(CHAT_REPO, {CHAT_FILE: tiny_models["chat"]})]).start()
    data = tmp_path / "d"
    try:
        on_cpu, none = answer_with(data, hub, tmp_path / "cpu.log")
        assert none == []
        cpu_log = (tmp_path / "cpu.log").read_text()
        assert "no GPU: every layer runs on the CPU" in cpu_log
        assert "CPU KV buffer" in cpu_log and "RPC0" not in cpu_log

        on_gpu, devices = answer_with(data, hub, tmp_path / "gpu.log", LLMLB_RPC_SERVERS=rpc_server)
        log = (tmp_path / "gpu.log").read_text()
        assert "all 3 layers fit the GPU" in log, log[-3000:]  # 2 blocks and the output
        # llama.cpp's own account: the KV cache (and the weights) live on the RPC device.
        assert f"RPC0[{rpc_server}] KV buffer size" in log
        assert "CPU KV buffer" not in log
        assert [d["backend"] for d in devices] == ["rpc"] and devices[0]["total_bytes"] > 0
        assert on_gpu == on_cpu and on_gpu  # the same greedy tokens, computed remotely

        some, _ = answer_with(
            data, hub, tmp_path / "two.log", LLMLB_RPC_SERVERS=rpc_server, LLMLB_GPU_LAYERS="2"
        )
        two = (tmp_path / "two.log").read_text()
        assert "2 of 3 layers, as set" in two  # the output layer and block 1; block 0 stays
        assert "CPU KV buffer" in two and f"RPC0[{rpc_server}] KV buffer" in two
        assert some == on_cpu

        # The doctor plans the downloaded model the same way.
        code, report = doctor(data, LLMLB_RPC_SERVERS=rpc_server, LLMLB_CONTEXT_SIZE="512")
        assert code == 0, report
        [model] = report["models"]
        assert model["name"] == CHAT_REPO and model["fits"]
        assert (model["gpu_layers"], model["offloaded"], model["n_layers"]) == (-1, 3, 3)
        assert model["gpu_bytes"] > 0 and "all 3 layers fit" in model["reason"]
    finally:
        hub.stop()
