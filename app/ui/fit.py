"""What the nodes' heartbeats say of their machines: devices in words, and where a model fits.

Pure functions from `GET /v0/nodes` entries: the Hub's fit badge judges this machine (the
local node's devices and RAM, or `probe()`'s RAM before its first heartbeat) and, with other
nodes on the LAN, its tooltip names the nodes the model would fit on. A window managing a
remote balancer (`llmlb --connect`) judges the server's nodes instead: the computer it runs on
serves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from app.core.node_protocol import DeviceJson
from app.core.system import Fit, Machine, Placement, fit, place
from app.core.wire import NodeJson, NodeMetrics
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.state import LIVE
from app.ui.widgets import human_bytes

BACKENDS = {
    "cuda": "CUDA",
    "metal": "Metal",
    "rocm": "ROCm",
    "hip": "ROCm",
    "vulkan": "Vulkan",
    "sycl": "SYCL",
    "rpc": "RPC",
    "cpu": "CPU",
}
PLACEMENT_ORDER = (Placement.GPU, Placement.OFFLOAD, Placement.RAM)


def metrics_of(node: NodeJson) -> NodeMetrics | None:
    """The node's last heartbeat figures; None before its first heartbeat (`{}`)."""
    return cast(NodeMetrics, node["metrics"]) if node["metrics"] else None


def backend_name(backend: str | None) -> str:
    """'cuda' → 'CUDA': the spelling people know; an unknown backend as the node sent it."""
    return BACKENDS.get((backend or "").lower(), backend or "")


def device_text(device: DeviceJson) -> str:
    """'NVIDIA RTX 4090 (CUDA): 18.2 GB free of 24.0 GB, 35% busy' (each part only when the
    node reported it)."""
    text = device["name"]
    backend = backend_name(device.get("backend"))
    if backend:
        text += f" ({backend})"
    if device["total_bytes"]:
        text += ": " + tr("{free} free of {total}").format(
            free=human_bytes(device["free_bytes"]) if device["free_bytes"] else "0 B",
            total=human_bytes(device["total_bytes"]),
        )
    busy = device.get("utilization")
    if busy is not None:
        # A share (0..1) as the heartbeat defines it; a value over 1 is a node sending percent.
        percent = busy * 100 if busy <= 1 else min(busy, 100.0)
        text += (", " if device["total_bytes"] else ": ") + tr("{n}% busy").format(n=round(percent))
    return text


def device_lines(node: NodeJson) -> list[str]:
    """Each device of the node in words, or 'none (CPU)'. Before its first heartbeat (or from a
    node too old to send devices) the names it registered with."""
    metrics = metrics_of(node)
    devices = (metrics.get("devices") or []) if metrics else []
    if devices:
        return [device_text(d) for d in devices]
    names = [str(g) for g in node.get("gpu_devices") or []]
    return names or [tr("none (CPU)")]


def best_device(devices: Sequence[DeviceJson]) -> DeviceJson | None:
    """The accelerator with the most memory: the one a whole model would go to."""
    return max(devices, key=lambda d: d["total_bytes"], default=None)


def machine_of(node: NodeJson, ram_fallback: Machine | None = None) -> Machine | None:
    """The node's machine from its last heartbeat: best device and RAM. None when it reported
    neither (no heartbeat yet, an external server); `ram_fallback` fills in a missing RAM."""
    metrics = metrics_of(node)
    if metrics is None:
        return None
    system = metrics.get("system") or {}
    ram = system.get("memory_total_bytes") or 0
    available = system.get("memory_available_bytes") or ram
    if not ram and ram_fallback is not None:
        ram, available = ram_fallback.ram_bytes, ram_fallback.available_bytes
    device = best_device([d for d in metrics.get("devices") or [] if d["total_bytes"] > 0])
    if not ram and device is None:
        return None
    if device is None:
        return Machine(ram, available)
    unified = (device.get("backend") or "").lower() == "metal"  # Apple Silicon: one pool
    return Machine(ram, available, device["total_bytes"], device["name"], unified)


@dataclass(frozen=True)
class Host:
    """A live node's machine, by the node's name."""

    name: str
    machine: Machine
    local: bool


@dataclass(frozen=True)
class Fleet:
    """This machine, and every live node with figures when other nodes are on the LAN.

    `remote`: the window manages another computer's balancer, so `here` is the server's best
    node (None until one reported its memory), never the computer the window runs on."""

    here: Machine | None
    hosts: tuple[Host, ...] = ()
    remote: bool = False


def fleet_of(nodes: Sequence[NodeJson], fallback: Machine, remote: bool = False) -> Fleet:
    """From `GET /v0/nodes`: the local node's machine (`fallback` until it has reported) and,
    when at least one other node is live, all live nodes' machines. With `remote`, the
    server's own node, else its live node with the most memory, and every live node."""
    if remote:
        return _server_fleet(nodes)
    here: Machine | None = None
    hosts: list[Host] = []
    # A live local node's figures first; an offline one's last figures are still this machine's.
    for node in sorted(nodes, key=lambda n: n["status"] not in LIVE):
        local = node["kind"] == "local"
        machine = machine_of(node, fallback if local else None)
        if machine is None:
            continue
        if local and here is None:
            here = machine
        if node["status"] in LIVE:
            hosts.append(Host(node["name"] or node["id"], machine, local))
    lan = any(not h.local for h in hosts)
    return Fleet(here or fallback, tuple(hosts) if lan else ())


def _server_fleet(nodes: Sequence[NodeJson]) -> Fleet:
    """A remote balancer's nodes: `fallback` (this computer) plays no part."""
    hosts = tuple(
        Host(n["name"] or n["id"], m, n["kind"] == "local")
        for n in nodes
        if n["status"] in LIVE and (m := machine_of(n)) is not None
    )
    own = [h for h in hosts if h.local]  # the server computer's own node, when it runs one
    biggest = max(hosts, key=lambda h: (h.machine.gpu_bytes, h.machine.ram_bytes), default=None)
    here = own[0] if own else biggest
    return Fleet(here.machine if here else None, hosts, remote=True)


@dataclass(frozen=True)
class Verdict:
    """What the badge shows: its state (colour), its words and its tooltip."""

    fit: str  # a Fit, or "available" (neutral) when nothing can be judged
    label: str
    tooltip: str


UNKNOWN = "available"  # the badge's neutral colours


def verdict(required_bytes: int, fleet: Fleet) -> Verdict:
    """The badge for a model needing `required_bytes`: judged on this machine (on a remote
    server: its node), with the nodes it would fit on in the tooltip."""
    here = fleet.here
    need = human_bytes(required_bytes)
    if here is None:
        return Verdict(
            UNKNOWN,
            tr("fit unknown"),
            tr("needs {need} of memory; no node of the server has reported its memory yet").format(
                need=need
            ),
        )
    state = fit(required_bytes, here)
    where = place(required_bytes, here)
    if where == Placement.GPU:
        label = QT_TR_NOOP("fits on GPU")
    elif state == Fit.FITS:
        label = QT_TR_NOOP("fits")  # a small model on the CPU: fine as it is
    elif state == Fit.SLOW:
        label = QT_TR_NOOP("fits in RAM, slower")
    else:
        label = QT_TR_NOOP("won't fit")
    if here.gpu_bytes:
        have = tr("{device} ({memory}) and {ram} of RAM").format(
            device=here.gpu_name,
            memory=human_bytes(here.gpu_bytes),
            ram=human_bytes(here.ram_bytes),
        )
    else:
        have = tr("{ram} of memory").format(ram=human_bytes(here.ram_bytes))
    if fleet.remote:
        said = tr("needs {need} of memory; the server's node has {have}")
    else:
        said = tr("needs {need} of memory; this machine has {have}")
    lines = [said.format(need=need, have=have)]
    if fleet.hosts:
        lines.append(fits_on(required_bytes, fleet.hosts))
    return Verdict(state, tr(label), "\n".join(lines))


def fits_on(required_bytes: int, hosts: Sequence[Host]) -> str:
    """'Fits on: studio-pc (RTX 4090, 24.0 GB), this computer (RAM)': GPUs first."""
    ranked: list[tuple[int, str]] = []
    for host in hosts:
        where = place(required_bytes, host.machine)
        if where == Placement.NONE:
            continue
        m = host.machine
        if where == Placement.GPU:
            text = f"{host.name} ({m.gpu_name}, {human_bytes(m.gpu_bytes)})"
        elif where == Placement.OFFLOAD:
            text = f"{host.name} ({m.gpu_name} + RAM)"
        else:
            text = f"{host.name} (RAM)"
        ranked.append((PLACEMENT_ORDER.index(where), text))
    if not ranked:
        return tr("Fits on no node")
    ranked.sort(key=lambda r: r[0])  # stable: the nodes' own order within a kind
    return tr("Fits on: {hosts}").format(hosts=", ".join(t for _, t in ranked))
