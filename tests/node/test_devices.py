"""The device probe reads llama.cpp's own device list: on a machine without an accelerator it
reports the CPU backend and no devices, the CPU with its real memory when asked; NVIDIA's and
ggml's spellings of a PCI address meet; a dead RPC endpoint is refused before llama.cpp sees
it (it would abort the process)."""

from __future__ import annotations

import pytest

from app.core.system import memory_info
from app.node import devices
from tests.node.test_memory import no_accelerator
from tests.test_main import free_port


@pytest.mark.skipif(not no_accelerator(), reason="this machine has an accelerator")
def test_a_cpu_machine_has_the_cpu_backend_and_no_devices() -> None:
    assert devices.built_backend() == "cpu"
    assert "CPU" in devices.compiled_backends()
    assert devices.list_devices() == []


def test_the_cpu_device_carries_this_machines_memory() -> None:
    [cpu] = [d for d in devices.list_devices(include_cpu=True) if d.backend == "cpu"]
    memory = memory_info()
    assert memory is not None
    assert cpu.total_bytes == memory.total_bytes
    assert 0 < cpu.free_bytes <= cpu.total_bytes
    assert cpu.json()["name"].endswith("(CPU)")  # "AMD EPYC ... (CPU)": what a person reads


def test_nvml_and_ggml_name_the_same_pci_slot_alike() -> None:
    assert devices._pci("00000000:C1:00.0") == devices._pci("0000:c1:00.0") == "0000:c1:00.0"
    assert devices._pci(None) == ""


def test_an_rpc_endpoint_that_does_not_answer_is_refused_readably() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    assert not devices.reachable(nobody, timeout=0.5)
    assert not devices.reachable("not-an-endpoint")
    with pytest.raises(RuntimeError, match="nothing answers at"):
        devices.add_rpc_server(nobody)
    assert all(d.backend != "rpc" for d in devices.list_devices())  # nothing was added
