"""A `llama-server` binary built from the llama.cpp vendored in llama-cpp-python 0.3.36.

It is the reference engine for `bench/node.py`: the same llama.cpp that our node runs through
llama-cpp-python, driven by llama.cpp's own server. The binary is built once (about five
minutes on two cores) and cached outside the repo, in
`~/.cache/llmlb-bench/llama-server-0.3.36/`; later calls reuse it.

Run: `.venv/bin/python bench/llama_server.py` to just build it (prints the binary's path).
Needs `cmake`, a C++ compiler and access to PyPI (for `pip download`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

VERSION = "0.3.36"
CACHE_ROOT = Path.home() / ".cache" / "llmlb-bench"
CACHE_DIR = CACHE_ROOT / f"llama-server-{VERSION}"
BINARY = CACHE_DIR / "llama-server"

CMAKE_OPTIONS = [
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DCMAKE_BUILD_TYPE=Release",
    # One self-contained executable: nothing to copy next to it, nothing to find at run time.
    "-DBUILD_SHARED_LIBS=OFF",
]


def _say(message: str) -> None:
    print(f"[llama-server] {message}", file=sys.stderr, flush=True)


def _run(command: list[str], cwd: Path | None = None) -> None:
    _say("$ " + " ".join(command))
    subprocess.run(command, cwd=cwd, check=True, stdout=sys.stderr, stderr=sys.stderr)


def _works(binary: Path) -> bool:
    """The cached binary exists and starts (`--version` exits 0)."""
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return False
    try:
        result = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _missing_libraries(binary: Path) -> list[str]:
    """Shared libraries `ldd` cannot resolve for `binary` (empty when ldd is unavailable)."""
    try:
        out = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def _build(work: Path) -> Path:
    """Download the sdist into `work`, build llama-server there, return the built binary."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"llama-cpp-python=={VERSION}",
            "-d",
            str(work),
        ]
    )
    archives = sorted(work.glob(f"llama_cpp_python-{VERSION}.tar.gz")) or sorted(
        work.glob("*.tar.gz")
    )
    if not archives:
        raise RuntimeError(f"pip download left no source archive in {work}")
    _say(f"unpacking {archives[0].name}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(work, filter="data")
    sources = [p for p in work.iterdir() if p.is_dir() and (p / "vendor" / "llama.cpp").is_dir()]
    if not sources:
        raise RuntimeError("the source archive has no vendor/llama.cpp")
    llama_cpp = sources[0] / "vendor" / "llama.cpp"
    _run(["cmake", "-B", "build", *CMAKE_OPTIONS], cwd=llama_cpp)
    jobs = str(os.cpu_count() or 2)
    _run(["cmake", "--build", "build", "--target", "llama-server", "-j", jobs], cwd=llama_cpp)
    built = llama_cpp / "build" / "bin" / "llama-server"
    if not built.is_file():
        found = sorted((llama_cpp / "build").rglob("llama-server"))
        if not found:
            raise RuntimeError("the build produced no llama-server binary")
        built = found[0]
    return built


def ensure_llama_server() -> Path:
    """Path of a working `llama-server`, building and caching it on first use."""
    if _works(BINARY):
        _say(f"using cached {BINARY}")
        return BINARY
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _say(f"building llama-server from llama-cpp-python {VERSION} (about 5 minutes)")
    with tempfile.TemporaryDirectory(prefix="llama-server-build-", dir=CACHE_ROOT) as tmp:
        work = Path(tmp)
        built = _build(work)
        missing = _missing_libraries(built)
        if missing:
            raise RuntimeError(f"llama-server needs libraries that are not found: {missing}")
        # Assemble next to the cache dir, then swap it in, so a half-copied binary never
        # looks like a cached one.
        staging = work / "install"
        staging.mkdir()
        shutil.copy2(built, staging / "llama-server")
        (staging / "BUILD_INFO").write_text(
            f"llama-cpp-python {VERSION} sdist, vendor/llama.cpp\n"
            f"cmake {' '.join(CMAKE_OPTIONS)}\n"
            f"build time {time.monotonic() - started:.0f} s\n"
        )
        if CACHE_DIR.exists():
            shutil.rmtree(CACHE_DIR)
        shutil.move(str(staging), CACHE_DIR)
    if not _works(BINARY):
        raise RuntimeError(f"the built {BINARY} does not run")
    _say(f"built in {time.monotonic() - started:.0f} s, cached at {BINARY}")
    return BINARY


def main() -> int:
    print(ensure_llama_server())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
