"""What this machine has (memory, GPU) and whether a model of a given size fits it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """Memory in bytes; `gpu_bytes` is 0 when llama.cpp has no GPU here."""

    ram_bytes: int
    available_bytes: int
    gpu_bytes: int = 0
    gpu_name: str = ""


def probe() -> Machine:
    """Read this machine's memory (and GPU memory where llama.cpp was built with a GPU)."""
    total = available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "MemTotal":
                total = int(value.split()[0]) * 1024
            elif key == "MemAvailable":
                available = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        total = available = pages * os.sysconf("SC_PAGE_SIZE") if pages else 0
    return Machine(total, available or total)


def fit(required_bytes: int, machine: Machine) -> str:
    """`fits`, `slow` (runs from system memory on the CPU) or `too_big`, for the Hub's badge."""
    if machine.gpu_bytes and required_bytes <= machine.gpu_bytes:
        return "fits"
    if machine.ram_bytes and required_bytes > machine.ram_bytes * 0.9:
        return "too_big"
    if not machine.gpu_bytes and required_bytes <= 2 * 2**30:
        return "fits"  # small models run well on a CPU
    return "slow"
