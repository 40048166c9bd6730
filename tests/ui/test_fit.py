"""From the nodes' heartbeats to the Hub's fit badge and the node detail's device lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from app.core.node_protocol import DeviceJson
from app.core.system import Fit, Machine
from app.core.wire import NodeJson
from app.ui.fit import Fleet, device_lines, device_text, fleet_of, verdict
from app.ui.i18n import set_language

GB = 10**9
PROBED = Machine(ram_bytes=16 * GB, available_bytes=12 * GB)  # probe() before any heartbeat


def gpu(name: str, total: float, free: float = 0, busy: float | None = None) -> DeviceJson:
    return {
        "name": name,
        "backend": "cuda",
        "total_bytes": int(total * GB),
        "free_bytes": int(free * GB),
        "utilization": busy,
    }


def node(
    name: str,
    kind: str = "remote",
    status: str = "online",
    devices: list[DeviceJson] | None = None,
    ram: float | None = 32,
    beaten: bool = True,
    gpu_devices: list[str] | None = None,
) -> NodeJson:
    """A `GET /v0/nodes` entry as the balancer answers it."""
    system: dict[str, Any] = {} if ram is None else {"memory_total_bytes": int(ram * GB)}
    metrics: dict[str, Any] = {"system": system, "devices": devices or [], "slots": 1}
    return cast(
        NodeJson,
        {
            "id": name + "-id",
            "name": name,
            "kind": kind,
            "status": status,
            "metrics": metrics if beaten else {},
            "gpu_devices": gpu_devices or [],
        },
    )


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("en")


def test_before_the_first_heartbeat_the_probed_ram_judges() -> None:
    for nodes in ([], [node("this computer", "local", "registering", beaten=False)]):
        fleet = fleet_of(nodes, PROBED)
        assert fleet == Fleet(PROBED)
        judged = verdict(int(7.4 * GB), fleet)
        assert (judged.fit, judged.label) == (Fit.SLOW, "fits in RAM, slower")
        assert judged.tooltip == "needs 7.4 GB of memory; this machine has 16.0 GB of memory"
    small = verdict(int(0.7 * GB), Fleet(PROBED))
    assert (small.fit, small.label) == (Fit.FITS, "fits")  # a small model runs well on a CPU
    assert verdict(30 * GB, Fleet(PROBED)).label == "won't fit"


def test_the_local_nodes_gpu_and_ram_judge_once_it_reports_them() -> None:
    local = node("this computer", "local", devices=[gpu("NVIDIA GeForce RTX 4090", 24, 18)])
    fleet = fleet_of([local], PROBED)
    assert fleet.hosts == ()  # no other node: no "fits on" line
    judged = verdict(int(7.4 * GB), fleet)
    assert (judged.fit, judged.label) == (Fit.FITS, "fits on GPU")
    assert judged.tooltip == (
        "needs 7.4 GB of memory; this machine has NVIDIA GeForce RTX 4090 (24.0 GB) "
        "and 32.0 GB of RAM"
    )
    split = verdict(int(29.8 * GB), fleet)  # 24 GB on the GPU, the rest in RAM
    assert (split.fit, split.label) == (Fit.SLOW, "fits in RAM, slower")
    assert verdict(60 * GB, fleet).label == "won't fit"
    # A GPU machine whose small model does not fit the GPU is slower, not "fits".
    tiny_gpu = fleet_of([node("laptop", "local", devices=[gpu("MX150", 1)], ram=16)], PROBED)
    assert verdict(int(1.5 * GB), tiny_gpu).label == "fits in RAM, slower"


def test_the_best_of_several_devices_counts_and_a_missing_ram_is_the_probed_one() -> None:
    devices = [gpu("RTX 3060", 12), gpu("RTX 4090", 24), gpu("broken", 0)]
    local = node("this computer", "local", devices=devices, ram=None)
    fleet = fleet_of([local], PROBED)
    assert (fleet.here.gpu_name, fleet.here.gpu_bytes) == ("RTX 4090", 24 * GB)
    assert fleet.here.ram_bytes == PROBED.ram_bytes
    assert verdict(20 * GB, fleet).label == "fits on GPU"


def test_with_lan_nodes_the_tooltip_names_where_the_model_fits() -> None:
    nodes = [
        node("this computer", "local", devices=[], ram=16),
        node("studio-pc", devices=[gpu("RTX 4090", 24)], ram=64),
        node("old-laptop", devices=[], ram=8),
        node("mac", devices=[{**gpu("Apple M2", 24), "backend": "metal"}], ram=32),
        node("asleep", status="offline", devices=[gpu("RTX 6000 Ada", 48)]),
        node("unapproved", status="pending", devices=[gpu("RTX 6000 Ada", 48)]),
        node("llama-server", "external", beaten=False),
    ]
    fleet = fleet_of(nodes, PROBED)
    assert [h.name for h in fleet.hosts] == ["this computer", "studio-pc", "old-laptop", "mac"]
    judged = verdict(int(7.4 * GB), fleet)
    assert judged.label == "fits in RAM, slower"  # judged on this machine
    assert judged.tooltip.splitlines()[1] == (
        "Fits on: studio-pc (RTX 4090, 24.0 GB), mac (Apple M2, 24.0 GB), this computer (RAM)"
    )
    big = verdict(int(29.8 * GB), fleet).tooltip.splitlines()[1]
    assert big == "Fits on: studio-pc (RTX 4090 + RAM)"  # the Mac's 24 GB are part of its RAM
    assert verdict(200 * GB, fleet).tooltip.splitlines()[1] == "Fits on no node"


def test_the_tooltip_and_badge_speak_japanese() -> None:
    set_language("ja")
    local = node("this computer", "local", devices=[gpu("RTX 4090", 24)])
    judged = verdict(int(7.4 * GB), fleet_of([local, node("studio-pc")], PROBED))
    assert judged.label == "GPU で動作可"
    assert "動作するノード: " in judged.tooltip


def test_devices_in_words() -> None:
    assert device_text(gpu("NVIDIA RTX 4090", 24, 18.2, 0.35)) == (
        "NVIDIA RTX 4090 (CUDA): 18.2 GB free of 24.0 GB, 35% busy"
    )
    assert device_text(gpu("NVIDIA RTX 4090", 24, 18.2, 35.0)).endswith(", 35% busy")
    assert device_text(gpu("NVIDIA RTX 4090", 24, 18.2)) == (
        "NVIDIA RTX 4090 (CUDA): 18.2 GB free of 24.0 GB"
    )
    rpc: DeviceJson = {
        "name": "RPC0",
        "backend": None,
        "total_bytes": 0,
        "free_bytes": 0,
        "utilization": None,
    }
    assert device_text(rpc) == "RPC0"
    assert device_text({**rpc, "backend": "rpc", "total_bytes": 8 * GB}) == (
        "RPC0 (RPC): 0 B free of 8.0 GB"
    )


def test_device_lines_from_the_heartbeat_else_the_registration() -> None:
    with_gpu = node("studio-pc", devices=[gpu("RTX 4090", 24, 18), gpu("RTX 3060", 12, 12)])
    assert device_lines(with_gpu) == [
        "RTX 4090 (CUDA): 18.0 GB free of 24.0 GB",
        "RTX 3060 (CUDA): 12.0 GB free of 12.0 GB",
    ]
    assert device_lines(node("cpu-box", devices=[])) == ["none (CPU)"]
    waiting = node("new", status="pending", beaten=False, gpu_devices=["RTX 4090"])
    assert device_lines(waiting) == ["RTX 4090"]
    assert device_lines(node("new", beaten=False)) == ["none (CPU)"]
