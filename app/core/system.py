"""What this machine has (memory, GPU, disk, load) and whether a model of a given size fits it."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from app.core.node_protocol import SystemJson

MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class Machine:
    """Memory in bytes; `gpu_bytes` is the largest accelerator's memory, 0 without one.
    `unified` when that memory is the system memory itself (Apple Silicon): then it does not
    add to the RAM."""

    ram_bytes: int
    available_bytes: int
    gpu_bytes: int = 0
    gpu_name: str = ""
    unified: bool = False


@dataclass(frozen=True)
class MemoryInfo:
    """The kernel's memory figures in bytes; `available_bytes` is None on kernels before
    3.14, which do not report MemAvailable."""

    total_bytes: int
    available_bytes: int | None


def memory_info(path: Path = MEMINFO) -> MemoryInfo | None:
    """MemTotal and MemAvailable from /proc/meminfo (the one place it is parsed); None where
    it cannot be read or makes no sense (not Linux)."""
    found: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                found[key] = int(value.split()[0]) * 1024  # the kernel counts in kB
    except (OSError, ValueError, IndexError):
        return None
    if "MemTotal" not in found:
        return None
    return MemoryInfo(found["MemTotal"], found.get("MemAvailable"))


def probe() -> Machine:
    """Read this machine's memory (and GPU memory where llama.cpp was built with a GPU)."""
    info = memory_info()
    if info is None:
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        total = pages * os.sysconf("SC_PAGE_SIZE") if pages else 0
        return Machine(total, total)
    return Machine(info.total_bytes, info.available_bytes or info.total_bytes)


SMALL_MODEL_BYTES = 2 * 2**30  # runs well on a CPU alone
USABLE_RAM = 0.9  # the system and other programs keep the rest


class Fit(StrEnum):
    """How well a model runs on a machine, as the Hub's badge says."""

    FITS = "fits"
    SLOW = "slow"  # runs, partly or wholly from system memory on the CPU
    TOO_BIG = "too_big"


class Placement(StrEnum):
    """Where a model's weights and cache would live on a machine."""

    GPU = "gpu"  # wholly in the largest accelerator's memory
    OFFLOAD = "offload"  # as many layers as fit on the accelerator, the rest in RAM
    RAM = "ram"  # system memory only (no accelerator)
    NONE = "none"  # more than the accelerator and the RAM hold together


def place(required_bytes: int, machine: Machine) -> Placement:
    """Where a model needing `required_bytes` would run on `machine` (RAM unknown, 0, counts
    as enough: a guess that lets the user try beats a refusal)."""
    if machine.gpu_bytes and required_bytes <= machine.gpu_bytes:
        return Placement.GPU
    usable = machine.ram_bytes * USABLE_RAM
    # Unified memory is one pool: the accelerator's share is part of the RAM already.
    spill = 0 if machine.unified else machine.gpu_bytes
    if machine.ram_bytes and required_bytes > usable + spill:
        return Placement.NONE
    return Placement.OFFLOAD if machine.gpu_bytes else Placement.RAM


def fit(required_bytes: int, machine: Machine) -> Fit:
    """How well a model needing `required_bytes` runs on `machine`."""
    where = place(required_bytes, machine)
    if where == Placement.GPU:
        return Fit.FITS
    if where == Placement.NONE:
        return Fit.TOO_BIG
    if where == Placement.RAM and required_bytes <= SMALL_MODEL_BYTES:
        return Fit.FITS  # small models run well on a CPU
    return Fit.SLOW


def system_metrics(models: Path) -> SystemJson:
    """The heartbeat's `system` block: CPUs, load, memory and the models folder's disk, each
    where the OS reports it."""
    metrics: SystemJson = {"cpu_count": os.cpu_count() or 0}
    with contextlib.suppress(OSError):
        metrics["load_average"] = os.getloadavg()[0]
    with contextlib.suppress(OSError):  # one statvfs: microseconds, fine on the loop
        disk = shutil.disk_usage(models)
        metrics["disk_total_bytes"] = disk.total
        metrics["disk_free_bytes"] = disk.free
    memory = memory_info()
    if memory is not None:
        metrics["memory_total_bytes"] = memory.total_bytes
        metrics["memory_available_bytes"] = memory.available_bytes or 0  # unknown reads as 0
    return metrics
