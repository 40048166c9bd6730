"""CPUs that advertise Intel AMX but trap its instructions (seen on a virtual machine here).

ggml runs quantized matrix products (Q4_0, Q4_K, Q8_0, ...) with AMX tile instructions when the
CPU lists `amx_tile` and the kernel grants the permission. Some hypervisors grant it and still
trap the instructions, and llama.cpp then dies of SIGILL at the first token of any quantized
model: the whole node, and the desktop app with it. Before this process loads its first model,
`guard` runs one token of a tiny Q8_0 model in a child process; when the child dies of
SIGILL, every model this process loads skips llama.cpp's extra buffer types (the AMX buffer
and the weight repacking, as llama-server's `--no-repack`), so ggml uses its AVX-512 kernels.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as llama_lib

log = logging.getLogger(__name__)

#: A 1-block Q8_0 llama model (76 KB), written by tests/support/tiny_gguf.py with the
#: arguments in `PROBE_MODEL_ARGS`; tests/node/test_amx.py checks the bytes are those.
PROBE_MODEL = Path(__file__).with_name("amx-probe.gguf")
PROBE_MODEL_ARGS: dict[str, Any] = {
    "n_embd": 32,
    "n_layer": 1,
    "n_head": 1,
    "n_ff": 32,
    "dtype": "q8_0",
    "name": "amx-probe",
}
PROBE_TIMEOUT_S = 120.0

#: Set in the child's environment: the bundle's program runs `run_probe` and exits
#: (packaging/llmlb_entry.py), where a plain install runs this module.
PROBE_ENV = "LLMLB_AMX_PROBE"

_lock = threading.Lock()
_checked = False
_trapped = False


def advertised(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """The CPU lists AMX (only x86-64 Linux can: elsewhere ggml has no AMX kernels here)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with cpuinfo.open() as lines:
            flags = next((line for line in lines if line.startswith("flags")), "")
    except OSError:
        return False
    return "amx_tile" in flags.split()


def probe_dies(command: list[str] | None = None) -> bool:
    """Whether one token of the probe model kills a child process with SIGILL (where AMX
    traps). A child that fails otherwise (another signal, no memory, a broken install)
    proves nothing about AMX and is logged, not counted."""
    env = {**os.environ, PROBE_ENV: str(PROBE_MODEL)}
    if command is None:
        frozen = getattr(sys, "frozen", False)
        command = [sys.executable] if frozen else [sys.executable, "-m", __name__]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("the AMX check could not run (%s); AMX stays as llama.cpp chooses", exc)
        return False
    if done.returncode == -signal.SIGILL:
        log.warning("a tiny quantized model died of SIGILL in llama.cpp's AMX code")
        return True
    if done.returncode != 0:  # another signal (the OOM killer's SIGKILL) is not AMX's doing
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        log.warning("the AMX check failed (%s); AMX stays as llama.cpp chooses", tail[0])
    return False


def run_probe(model: str) -> None:
    """The child's work: load `model` on the CPU and run one token through it."""
    llm = llama_cpp.Llama(model, n_ctx=32, n_threads=1, n_gpu_layers=0, verbose=False)
    llm.create_completion("a", max_tokens=1)


def _without_extra_buffers() -> None:
    """Every model loaded from now on skips llama.cpp's extra buffer types (AMX, repacking).
    llama-cpp-python's `Llama` takes its model parameters from this function and has no
    argument for the field, so the function is wrapped, once, for the whole process."""
    default = llama_lib.llama_model_default_params

    def params() -> llama_lib.llama_model_params:
        made: llama_lib.llama_model_params = default()
        made.use_extra_bufts = False
        return made

    llama_lib.llama_model_default_params = params


def guard() -> None:
    """Check AMX once per process, before the first model loads (see the module's text)."""
    global _checked, _trapped
    with _lock:
        if _checked:
            return
        _checked = True
        if not advertised() or not probe_dies():
            return
        _trapped = True
        _without_extra_buffers()
        log.warning(
            "this CPU advertises AMX but traps its instructions: llama.cpp uses its "
            "AVX-512 kernels instead (no AMX, no weight repacking)"
        )


def trapped() -> bool:
    """AMX was found trapped and is off for this process (`llmlb doctor` says so)."""
    return _trapped


if __name__ == "__main__":
    run_probe(os.environ[PROBE_ENV])
