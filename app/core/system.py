"""What this machine has (memory, GPU) and whether a model of a given size fits it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class Machine:
    """Memory in bytes; `gpu_bytes` is 0 when llama.cpp has no GPU here."""

    ram_bytes: int
    available_bytes: int
    gpu_bytes: int = 0
    gpu_name: str = ""


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


class Fit(StrEnum):
    """Whether a model fits this machine, as the Hub's badge says."""

    FITS = "fits"
    SLOW = "slow"  # runs from system memory on the CPU
    TOO_BIG = "too_big"


def fit(required_bytes: int, machine: Machine) -> Fit:
    """How well a model needing `required_bytes` runs here."""
    if machine.gpu_bytes and required_bytes <= machine.gpu_bytes:
        return Fit.FITS
    if machine.ram_bytes and required_bytes > machine.ram_bytes * 0.9:
        return Fit.TOO_BIG
    if not machine.gpu_bytes and required_bytes <= 2 * 2**30:
        return Fit.FITS  # small models run well on a CPU
    return Fit.SLOW
