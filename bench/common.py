"""Shared bench helpers: machine description, percentiles, a served llmlb subprocess."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line naming this machine, for the results table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def today() -> str:
    """The date, for the results table."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0, terminate: bool = True) -> None:
    """End a child process: SIGTERM (unless it was told otherwise), then SIGKILL after
    `timeout` seconds."""
    if terminate:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_llmlb(
    data_dir: Path, port: int, env: dict[str, str], local_node: bool = False
) -> subprocess.Popen[bytes]:
    """`llmlb serve` as a user runs it, waited for until it answers.

    Without `local_node` it runs as a bare balancer (`--no-local-node`); with it, the
    balancer starts its local llama.cpp node too, as `llmlb serve` does by default.
    """
    command = [
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    if not local_node:
        command.append("--no-local-node")
    proc = subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    _, err = proc.communicate(timeout=10)
    tail = err.decode(errors="replace").strip().splitlines()[-5:]
    raise RuntimeError("llmlb did not start" + (": " + " | ".join(tail) if tail else ""))


def record(section: str, text: str) -> None:
    """Replace (or add) a section of docs/benchmarks.md with `text`."""
    path = ROOT / "docs" / "benchmarks.md"
    doc = (
        path.read_text() if path.exists() else "# Benchmarks\n\nWritten by the scripts in bench/.\n"
    )
    start_marker = f"<!-- {section} -->"
    end_marker = f"<!-- /{section} -->"
    block = f"{start_marker}\n{text.rstrip()}\n{end_marker}"
    if start_marker in doc and end_marker in doc:
        before = doc.split(start_marker)[0]
        after = doc.split(end_marker, 1)[1]
        doc = before + block + after
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)
