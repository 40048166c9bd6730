"""A node tells what it runs on, and a model too big for this machine's memory gets a readable
error that does not stick: once it fits, the next request loads it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from app.core.system import memory_info
from app.node.devices import list_devices
from app.node.engine import llama as engine_llama
from app.node.engine.offload import Plan
from app.node.engine.types import OutOfMemory
from tests.conftest import RunningBalancer
from tests.node.conftest import register_ready
from tests.support.waiting import eventually

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def no_accelerator() -> bool:
    """Nothing here llama.cpp could offload to: no NVIDIA driver, no ROCm, not a Mac."""
    return not (
        Path("/proc/driver/nvidia/version").exists()
        or Path("/dev/kfd").exists()
        or os.uname().sysname == "Darwin"
    )


async def test_the_heartbeat_carries_the_devices_llama_cpp_sees(served: RunningBalancer) -> None:
    async def local() -> dict[str, Any] | None:
        _, nodes = await served.get("/v0/nodes")
        node = next((n for n in nodes if n["kind"] == "local"), None)
        return node if node and node["metrics"] else None

    node = await eventually(local)
    expected = [d.json() for d in list_devices()]
    assert [d["name"] for d in node["metrics"]["devices"]] == [d["name"] for d in expected]
    assert node["gpu_devices"] == [d["name"] for d in expected]
    if no_accelerator():  # a CPU machine (this one and CI): no devices, said plainly
        assert node["metrics"]["devices"] == []
    system = node["metrics"]["system"]
    assert system["memory_total_bytes"] > system["memory_available_bytes"] > 0


async def test_a_model_too_big_for_memory_is_refused_readably_and_tried_again(
    served: RunningBalancer,
) -> None:
    name = await register_ready(served)
    path = served.ctx.local_node.library.model_path(name)
    assert path is not None
    size = path.stat().st_size
    memory = memory_info()
    assert memory is not None
    # The same model with twice this machine's RAM of (sparse) weights after it.
    os.truncate(path, 2 * memory.total_bytes)
    status, body = await served.post("/v1/chat/completions", {"model": name, **CHAT})
    assert status == 503, body
    error = body["error"]
    assert error["code"] == "insufficient_memory"
    assert error["message"].startswith(f"not enough memory to load {name}: ")
    assert " GB needed " in error["message"] and " GB free" in error["message"]
    # Not remembered as a broken model: the catalog still shows it ready ...
    _, entry = await served.get(f"/v0/models/{name}")
    assert entry["lifecycle_status"] == "ready", entry
    # ... and once it fits, the next request loads it.
    os.truncate(path, size)
    status, body = await served.post("/v1/chat/completions", {"model": name, **CHAT})
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] is not None


@pytest.mark.parametrize("value", ["most", "-2"])
def test_a_bad_gpu_layers_setting_is_refused_with_its_name(value: str) -> None:
    from app.core.settings import parse_gpu_layers

    with pytest.raises(ValueError, match="LLMLB_GPU_LAYERS"):
        parse_gpu_layers(value)
    assert [parse_gpu_layers(v) for v in ("auto", "all", "0", "12", " ALL ")] == [
        None,
        -1,
        0,
        12,
        -1,
    ]


OFFLOADED = Plan(
    gpu_layers=-1, offloaded=3, n_layers=3, gpu_bytes=6_100_000_000, cpu_bytes=0, reason=""
)


def llama_says(line: str) -> None:
    """A line through llama.cpp's log hook, as llama.cpp writes it when an allocation fails."""
    engine_llama.recent_problems()  # forget earlier lines
    engine_llama._log_callback(4, line.encode() + b"\n", None)


def test_the_gpu_running_out_of_memory_at_load_reads_with_the_figures() -> None:
    llama_says(
        "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 6100.00 MiB on device 0: "
        "cudaMalloc failed: out of memory"
    )
    error = engine_llama.memory_error("qwen3-8b", OFFLOADED, "load")
    assert isinstance(error, OutOfMemory) and error.status == 503
    assert error.message.startswith("the GPU ran out of memory loading qwen3-8b: 6.1 GB needed, ")
    assert error.message.endswith(" free")
    # Any other failure keeps llama.cpp's own reason.
    llama_says("llama_model_load: error loading model: unknown model architecture: 'x'")
    other = engine_llama.memory_error("m", OFFLOADED, "load")
    assert not isinstance(other, OutOfMemory) and "unknown model architecture" in other.message


def test_running_out_of_memory_mid_answer_says_so_and_to_ask_again() -> None:
    llama_says("ggml_gallocr_reserve_n: failed to allocate CUDA0 buffer of size 1073741824")
    error = engine_llama.decode_error("qwen3-8b", -3, OFFLOADED)
    assert isinstance(error, OutOfMemory)
    assert error.message.startswith("the GPU ran out of memory while qwen3-8b was answering")
    engine_llama.recent_problems()
    full = engine_llama.decode_error("m", 1, None)
    assert "no room left in its KV cache" in full.message
