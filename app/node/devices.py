"""The node's compute devices, as llama.cpp itself sees them: local accelerators (CUDA, Metal,
ROCm, Vulkan) and remote RPC servers, with their memory, and utilisation where NVIDIA's own
library gives it.

llama-cpp-python does not wrap ggml's device API, so it is read here through ctypes from the
`libggml` that ships in its wheel (`ggml_backend_dev_count/get/get_props`). An RPC server
(`ggml-rpc-server` on another machine, or on loopback in the tests) is added with
`add_rpc_server`; llama.cpp then treats it as a GPU and offloads layers to it.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import threading
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp._ctypes_extensions import load_shared_library

from app.core.node_protocol import DeviceJson

log = logging.getLogger(__name__)
LIB_DIR = Path(llama_cpp.__file__).parent / "lib"
# ggml's backend names (ggml_backend_reg_name) -> the build's backend as LLMLB_GPU names it.
BACKENDS = {"CUDA": "cuda", "Metal": "metal", "ROCm": "rocm", "HIP": "rocm", "Vulkan": "vulkan"}


class DeviceType(IntEnum):
    """ggml_backend_dev_type (ggml-backend.h)."""

    CPU = 0
    GPU = 1
    IGPU = 2  # integrated: shares the system's memory
    ACCEL = 3  # e.g. BLAS or AMX: helps the CPU, holds no layers
    META = 4


class _Caps(ctypes.Structure):
    _fields_ = [
        ("async_", ctypes.c_bool),
        ("host_buffer", ctypes.c_bool),
        ("buffer_from_host_ptr", ctypes.c_bool),
        ("events", ctypes.c_bool),
    ]


class _Props(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("memory_free", ctypes.c_size_t),
        ("memory_total", ctypes.c_size_t),
        ("type", ctypes.c_int),
        ("device_id", ctypes.c_char_p),
        ("caps", _Caps),
    ]


@dataclass(frozen=True)
class Device:
    """One device llama.cpp can run layers on."""

    name: str  # ggml's name: "CUDA0", "Metal", "RPC0[127.0.0.1:50052]"...
    description: str  # what a person calls it: "NVIDIA GeForce RTX 4090"
    backend: str  # "cuda", "metal", "rocm", "vulkan", "rpc", "cpu"
    type: DeviceType
    total_bytes: int
    free_bytes: int
    pci_id: str | None = None
    utilization: float | None = None  # 0..1, where the platform tells

    @property
    def unified(self) -> bool:
        """Its memory is the system's RAM (Apple Silicon, integrated GPUs)."""
        return self.type == DeviceType.IGPU or self.backend == "metal"

    def json(self) -> DeviceJson:
        """As the heartbeat carries it."""
        label = self.description or self.name
        if self.backend == "rpc":  # its description is its address
            label = f"RPC server {self.description}"
        return {
            "name": label if label == self.name else f"{label} ({self.name})",
            "backend": self.backend,
            "total_bytes": self.total_bytes,
            "free_bytes": self.free_bytes,
            "utilization": self.utilization,
        }


def loaded_library(name: str) -> ctypes.CDLL:
    """The very `lib{name}` that llama.cpp runs on. A wheel cannot hold symlinks, so its
    `libggml.so`, `libggml.so.0`... are copies, and opening another copy than the one
    libllama linked would give a second ggml with a device list of its own: llama.cpp would
    never see an RPC server added there. So the file already mapped into this process is
    opened (Linux), else the wheel's own file."""
    maps = Path("/proc/self/maps")
    if maps.is_file():
        prefix = f"lib{name}.so"
        for line in maps.read_text().splitlines():
            path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
            base = Path(path).name
            if base == prefix or base.startswith(prefix + "."):
                return ctypes.CDLL(path)
    lib: ctypes.CDLL = load_shared_library(name, LIB_DIR)
    return lib


class _Ggml:
    """ggml's device API through ctypes (loaded once)."""

    def __init__(self) -> None:
        llama_cpp.llama_backend_init()  # libllama, and the ggml it links, are loaded now
        lib = loaded_library("ggml")
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_get_props.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Props)]
        lib.ggml_backend_dev_get_props.restype = None
        lib.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
        lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_reg_name.restype = ctypes.c_char_p
        lib.ggml_backend_reg_count.restype = ctypes.c_size_t
        lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_reg_get.restype = ctypes.c_void_p
        for fn in (lib.ggml_backend_dev_name, lib.ggml_backend_dev_description):
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = ctypes.c_char_p
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_register.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_register.restype = None
        self.lib = lib
        self.rpc: Any = None
        self.rpc_servers: set[str] = set()

    def backends(self) -> list[str]:
        """The names of the backends compiled in: "CPU", "CUDA", "RPC"..."""
        lib = self.lib
        names = (
            lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i))
            for i in range(lib.ggml_backend_reg_count())
        )
        return [n.decode() for n in names if n]


_ggml: _Ggml | None = None
_lock = threading.Lock()


def _lib() -> _Ggml:
    global _ggml
    with _lock:
        if _ggml is None:
            _ggml = _Ggml()
        return _ggml


def compiled_backends() -> list[str]:
    """ggml's backends in this build, e.g. ["CUDA", "RPC", "CPU"]."""
    return _lib().backends()


def built_backend() -> str:
    """The accelerator this llama-cpp-python was built for: cuda, metal, rocm, vulkan or cpu."""
    for name in compiled_backends():
        if name in BACKENDS:
            return BACKENDS[name]
    return "cpu"


def reachable(endpoint: str, timeout: float = 2.0) -> bool:
    """An RPC server answers a TCP connection at "host:port" (llama.cpp aborts the whole
    process when it cannot connect to one, so every use is preceded by this)."""
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def add_rpc_server(endpoint: str) -> None:
    """Make an RPC server ("host:port", a running `ggml-rpc-server`) one of llama.cpp's devices
    (idempotent). RuntimeError when it cannot be reached or this build has no RPC backend."""
    if not reachable(endpoint):
        raise RuntimeError(f"nothing answers at {endpoint} (is ggml-rpc-server running there?)")
    g = _lib()
    with _lock:
        if endpoint in g.rpc_servers:
            return
        if g.rpc is None:
            try:
                g.rpc = loaded_library("ggml-rpc")
            except (OSError, RuntimeError, FileNotFoundError) as exc:
                raise RuntimeError(
                    "this llama.cpp build has no RPC backend (-DGGML_RPC=ON)"
                ) from exc
            g.rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
            g.rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
        reg = g.rpc.ggml_backend_rpc_add_server(endpoint.encode())
        if not reg:
            raise RuntimeError(f"llama.cpp could not add the RPC server {endpoint}")
        g.lib.ggml_backend_register(reg)
        g.rpc_servers.add(endpoint)
    log.info("added the RPC server %s as a device", endpoint)


def _backend_of(g: _Ggml, dev: int, kind: DeviceType) -> str:
    reg_name = g.lib.ggml_backend_reg_name(g.lib.ggml_backend_dev_backend_reg(dev))
    name = reg_name.decode() if reg_name else ""
    if name.startswith("RPC"):
        return "rpc"
    if kind == DeviceType.CPU:
        return "cpu"
    return BACKENDS.get(name, name.lower() or "gpu")


def list_devices(*, include_cpu: bool = False) -> list[Device]:
    """The devices llama.cpp can offload layers to (GPUs, integrated GPUs, RPC servers), with
    their memory now; the CPU too when asked. An RPC server that does not answer is listed
    with no memory (asking llama.cpp for it would abort the process)."""
    g = _lib()
    out: list[Device] = []
    for i in range(g.lib.ggml_backend_dev_count()):
        dev = g.lib.ggml_backend_dev_get(i)
        try:
            kind = DeviceType(g.lib.ggml_backend_dev_type(dev))
        except ValueError:
            continue
        if kind in (DeviceType.ACCEL, DeviceType.META) or (
            kind == DeviceType.CPU and not include_cpu
        ):
            continue
        name = (g.lib.ggml_backend_dev_name(dev) or b"").decode("utf-8", "replace")
        description = (g.lib.ggml_backend_dev_description(dev) or b"").decode("utf-8", "replace")
        backend = _backend_of(g, dev, kind)
        if backend == "rpc" and not reachable(description, timeout=1.0):
            out.append(Device(name, description.strip(), backend, kind, 0, 0))
            continue
        props = _Props()
        g.lib.ggml_backend_dev_get_props(dev, ctypes.byref(props))
        out.append(
            Device(
                name=name,
                description=description.strip(),
                backend=backend,
                type=kind,
                total_bytes=int(props.memory_total),
                free_bytes=int(props.memory_free),
                pci_id=props.device_id.decode() if props.device_id else None,
            )
        )
    return _with_nvidia_use(out)


def _with_nvidia_use(devices: list[Device]) -> list[Device]:
    """CUDA devices get their utilisation from NVML (matched by PCI bus id)."""
    if not any(d.backend == "cuda" and d.pci_id for d in devices):
        return devices
    use = nvidia_utilization()
    return [replace(d, utilization=use.get(_pci(d.pci_id))) if d.pci_id else d for d in devices]


def _pci(bus_id: str | None) -> str:
    """A PCI bus id in one spelling: NVML says "00000000:C1:00.0", ggml "0000:c1:00.0"."""
    if not bus_id:
        return ""
    domain, _, rest = bus_id.lower().partition(":")
    return f"{int(domain, 16):04x}:{rest}" if rest else bus_id.lower()


def nvidia_utilization() -> dict[str, float]:
    """GPU utilisation (0..1) per PCI bus id from NVIDIA's management library; {} without it."""
    try:
        import pynvml  # nvidia-ml-py: NVIDIA's own bindings
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver here: no figures, not an error
        return {}
    out: dict[str, float] = {}
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            bus = pynvml.nvmlDeviceGetPciInfo(handle).busId
            bus = bus.decode() if isinstance(bus, bytes) else str(bus)
            out[_pci(bus)] = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
    except Exception as exc:  # a device in a bad state: report what was read
        log.debug("NVML: %s", exc)
    finally:
        pynvml.nvmlShutdown()
    return out
