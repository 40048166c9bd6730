"""Where a model fits a machine: on its GPU, split with the RAM, in the RAM, or not at all."""

from __future__ import annotations

import pytest

from app.core.system import Fit, Machine, Placement, fit, place

GB = 10**9
GIB = 2**30
CPU_16 = Machine(ram_bytes=16 * GB, available_bytes=12 * GB)
RTX_4090 = Machine(32 * GB, 20 * GB, gpu_bytes=24 * GB, gpu_name="NVIDIA GeForce RTX 4090")
SMALL_GPU = Machine(16 * GB, 10 * GB, gpu_bytes=1 * GB, gpu_name="MX150")
MAC_32 = Machine(32 * GB, 20 * GB, gpu_bytes=24 * GB, gpu_name="Apple M2 Max", unified=True)
UNKNOWN_RAM = Machine(0, 0)


@pytest.mark.parametrize(
    ("machine", "required", "where", "verdict"),
    [
        # A CPU-only machine: small models run well, larger ones slowly, 90 % of RAM at most.
        (CPU_16, int(0.7 * GB), Placement.RAM, Fit.FITS),
        (CPU_16, 2 * GIB, Placement.RAM, Fit.FITS),
        (CPU_16, 2 * GIB + 1, Placement.RAM, Fit.SLOW),
        (CPU_16, int(7.4 * GB), Placement.RAM, Fit.SLOW),
        (CPU_16, int(14.4 * GB), Placement.RAM, Fit.SLOW),
        (CPU_16, int(14.5 * GB), Placement.NONE, Fit.TOO_BIG),
        # A 24 GB GPU with 32 GB of RAM: whole on the GPU up to its memory, then split.
        (RTX_4090, int(0.7 * GB), Placement.GPU, Fit.FITS),
        (RTX_4090, 24 * GB, Placement.GPU, Fit.FITS),
        (RTX_4090, int(29.8 * GB), Placement.OFFLOAD, Fit.SLOW),
        (RTX_4090, int(52.8 * GB), Placement.OFFLOAD, Fit.SLOW),  # 24 + 0.9 × 32
        (RTX_4090, int(52.9 * GB), Placement.NONE, Fit.TOO_BIG),
        # A GPU too small for the model: partly offloaded, slower even for a small model.
        (SMALL_GPU, int(1.5 * GB), Placement.OFFLOAD, Fit.SLOW),
        (SMALL_GPU, int(0.9 * GB), Placement.GPU, Fit.FITS),
        # Apple Silicon: GPU memory is the RAM, so it does not add to it.
        (MAC_32, 20 * GB, Placement.GPU, Fit.FITS),
        (MAC_32, int(28.8 * GB), Placement.OFFLOAD, Fit.SLOW),
        (MAC_32, int(29.8 * GB), Placement.NONE, Fit.TOO_BIG),
        # RAM unknown: never refused on a guess.
        (UNKNOWN_RAM, 100 * GB, Placement.RAM, Fit.SLOW),
    ],
)
def test_a_models_place_and_verdict(
    machine: Machine, required: int, where: Placement, verdict: Fit
) -> None:
    assert place(required, machine) == where
    assert fit(required, machine) == verdict
