"""`llmlb doctor`: what this machine gives llama.cpp. The backend built (cpu, cuda, metal,
rocm, vulkan), the devices with their memory, the RAM, and for each model on this machine's
node where its layers would go now, with the same planner a load uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

import llama_cpp

from app.core.node_protocol import DeviceJson
from app.core.settings import Settings, parse_gpu_layers
from app.core.system import memory_info
from app.node.devices import add_rpc_server, built_backend, compiled_backends, list_devices
from app.node.engine import amx, offload
from app.node.engine.gguf_header import read_header
from app.node.engine.types import EngineError
from app.node.library import ModelLibrary

NODE_DIR = "node"  # where the app's (and `llmlb node`'s) node keeps its models


class ModelPlanJson(TypedDict):
    """Where one model's layers would go."""

    name: str
    file_bytes: int
    gpu_layers: int | None  # as llama.cpp counts: -1 all; None when it cannot be planned
    offloaded: int
    n_layers: int  # the blocks and the output layer, as llama.cpp counts
    context_tokens: int  # the most one conversation may hold
    kv_tokens: int  # the KV cache's cells, all slots together
    gpu_bytes: int
    cpu_bytes: int
    fits: bool
    reason: str


class DoctorJson(TypedDict):
    """`llmlb doctor --json`."""

    backend: str
    compiled_backends: list[str]
    gpu_offload: bool
    devices: list[DeviceJson]
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    gpu_layers_setting: str
    context_setting: str
    cpu_amx: str  # "not advertised", "works" or "trapped: off" (app/node/engine/amx.py)
    models: list[ModelPlanJson]
    problems: list[str]


def examine(settings: Settings) -> DoctorJson:
    """Probe the backend and devices, and plan every model the node holds."""
    problems: list[str] = []
    for endpoint in (s.strip() for s in settings.rpc_servers.split(",")):
        if endpoint:
            try:
                add_rpc_server(endpoint)
            except RuntimeError as exc:
                problems.append(f"RPC server {endpoint}: {exc}")
    offloads = bool(llama_cpp.llama_supports_gpu_offload())
    devices = list_devices() if offloads else []
    memory = memory_info()
    slots, asked = max(1, settings.slots), settings.context_size or None
    try:
        requested = parse_gpu_layers(settings.gpu_layers)
    except ValueError as exc:
        problems.append(str(exc))
        requested = None
    gpu_free = sum(d.free_bytes for d in devices) if devices else None
    ram_free = memory.available_bytes if memory else None
    unified = any(d.unified for d in devices)
    models: list[ModelPlanJson] = []
    for name, path in sorted(_model_files(settings.data_dir / NODE_DIR / "models").items()):
        models.append(_plan(name, path, slots, asked, gpu_free, ram_free, unified, requested))
    return {
        "backend": built_backend(),
        "compiled_backends": compiled_backends(),
        "gpu_offload": offloads,
        "devices": [d.json() for d in devices],
        "memory_total_bytes": memory.total_bytes if memory else None,
        "memory_available_bytes": ram_free,
        "gpu_layers_setting": settings.gpu_layers,
        "context_setting": str(asked or "auto"),
        "cpu_amx": _amx(),
        "models": models,
        "problems": problems,
    }


def _amx() -> str:
    if not amx.advertised():
        return "not advertised"
    amx.guard()
    return "trapped: off" if amx.trapped() else "works"


def _model_files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    library = ModelLibrary(root)
    found = {name: library.model_path(name) for name in library.folders()}
    return {name: path for name, path in found.items() if path is not None and path.is_file()}


def _plan(
    name: str,
    path: Path,
    slots: int,
    asked: int | None,
    gpu_free: int | None,
    ram_free: int | None,
    unified: bool,
    requested: int | None,
) -> ModelPlanJson:
    try:
        shape = offload.ModelShape.of(read_header(path))
    except EngineError as exc:
        size = path.stat().st_size
        return ModelPlanJson(
            name=name, file_bytes=size, gpu_layers=None, offloaded=0, n_layers=0, gpu_bytes=0,
            cpu_bytes=0, context_tokens=0, kv_tokens=0, fits=False, reason=exc.message,
        )  # fmt: skip
    room = offload.memory_room(ram_free, gpu_free, unified)
    context = offload.size_context(shape, shape.trained_context, slots, asked, room)
    placed = offload.plan(shape, context.total, gpu_free, requested)
    fits, reason = True, placed.reason
    try:
        offload.check_fits(name, placed, ram_free, gpu_free, unified)
    except EngineError as exc:
        fits, reason = False, exc.message
    return ModelPlanJson(
        name=name,
        file_bytes=shape.file_bytes,
        gpu_layers=placed.gpu_layers,
        offloaded=placed.offloaded,
        n_layers=placed.n_layers,
        context_tokens=context.per_sequence,
        kv_tokens=context.total,
        gpu_bytes=placed.gpu_bytes,
        cpu_bytes=placed.cpu_bytes,
        fits=fits,
        reason=reason,
    )


def render(report: DoctorJson) -> str:
    """The report as a person reads it."""
    gb = offload.gb
    lines = [
        f"llama.cpp backend: {report['backend']} "
        f"(compiled: {', '.join(report['compiled_backends'])}; "
        f"GPU offload {'on' if report['gpu_offload'] else 'off'})",
    ]
    if report["memory_total_bytes"] is not None:
        free = report["memory_available_bytes"]
        lines.append(
            f"RAM: {gb(free or 0)} free of {gb(report['memory_total_bytes'])}"
            if free is not None
            else f"RAM: {gb(report['memory_total_bytes'])}"
        )
    if not report["devices"]:
        lines.append("devices: none (every layer runs on the CPU)")
    for d in report["devices"]:
        use = f", {d['utilization']:.0%} busy" if d["utilization"] is not None else ""
        lines.append(
            f"device: {d['name']} [{d['backend']}]: {gb(d['free_bytes'])} free of "
            f"{gb(d['total_bytes'])}{use}"
        )
    if report["cpu_amx"] != "not advertised":
        lines.append(
            "CPU AMX: works"
            if report["cpu_amx"] == "works"
            else "CPU AMX: advertised but trapped by this machine: llama.cpp uses AVX-512 instead"
        )
    lines.append(
        f"GPU layers: {report['gpu_layers_setting']} (LLMLB_GPU_LAYERS); "
        f"context: {report['context_setting']} (LLMLB_CONTEXT_SIZE)"
    )
    if not report["models"]:
        lines.append("models: none downloaded on this machine yet")
    for m in report["models"]:
        where = (
            f"{m['offloaded']}/{m['n_layers']} layers on the GPU ({gb(m['gpu_bytes'])}), "
            f"{gb(m['cpu_bytes'])} in RAM, {m['context_tokens']} tokens of context"
            if m["gpu_layers"] is not None
            else "cannot be planned"
        )
        verdict = "ok" if m["fits"] else "WON'T FIT"
        lines.append(f"model {m['name']}: {verdict}: {where}: {m['reason']}")
    lines += [f"problem: {p}" for p in report["problems"]]
    return "\n".join(lines)


def run(settings: Settings, as_json: bool) -> int:
    """Print the report; 0 unless something is wrong (a problem, a model that won't fit)."""
    report = examine(settings)
    print(json.dumps(report, indent=2) if as_json else render(report))
    bad = report["problems"] or any(not m["fits"] for m in report["models"])
    return 1 if bad else 0
