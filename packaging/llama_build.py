"""Build llama-cpp-python for this machine's accelerator, and llama.cpp's RPC server.

`make run` / `make test` call `python packaging/llama_build.py install` before installing the
project: it picks the backend (CUDA when a CUDA toolkit is there, Metal on Apple Silicon,
ROCm/HIP, Vulkan with its headers and `glslc`, else the CPU; `LLMLB_GPU` overrides), builds the
wheel with that backend and llama.cpp's RPC backend (`-DGGML_RPC=ON`) into a cache folder of
its own per backend and flags, installs it into the running interpreter, and prints one line
saying which backend it built. pip's wheel cache is keyed by the source, not by `CMAKE_ARGS`,
so it is bypassed: a CPU wheel is never reused for a GPU build, or the other way round.

`python packaging/llama_build.py rpc-server` builds `ggml-rpc-server` from the same source
(the tests use it as a GPU on loopback) and prints its path.

Standard library only: it runs in a fresh venv before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "0.3.36"  # the llama-cpp-python pin in pyproject.toml
BACKENDS = ("cuda", "metal", "rocm", "vulkan", "cpu")
MARKER = "llmlb-llama-backend.json"  # beside the venv's site-packages, says what was built


@dataclass(frozen=True)
class Plan:
    """One build: the backend, the CMake flags and the extra environment it needs."""

    backend: str
    cmake_args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def key(self) -> str:
        """Names the build: a wheel built with other flags lives in another folder."""
        flags = " ".join(self.cmake_args)
        digest = hashlib.sha256(f"{VERSION} {flags}".encode()).hexdigest()[:10]
        return f"llama-cpp-python-{VERSION}-{self.backend}-{digest}"


def cache_dir() -> Path:
    """Where wheels, the source and the RPC server are kept between builds."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("LLMLB_BUILD_CACHE") or Path(base) / "llmlb")


def _which(name: str, env: dict[str, str] | None = None) -> str | None:
    return shutil.which(name, path=(env or os.environ).get("PATH"))


def find_nvcc(env: dict[str, str]) -> str | None:
    """nvcc on PATH, or in CUDA_HOME / CUDA_PATH / /usr/local/cuda."""
    found = _which("nvcc", env)
    if found:
        return found
    roots = [env.get("CUDA_HOME"), env.get("CUDA_PATH"), "/usr/local/cuda", "/opt/cuda"]
    for root in filter(None, roots):
        nvcc = Path(root) / "bin" / "nvcc"
        if nvcc.is_file():
            return str(nvcc)
    return None


def find_rocm(env: dict[str, str]) -> Path | None:
    """The ROCm root when HIP's compiler is there."""
    hipconfig = _which("hipconfig", env)
    roots = [env.get("ROCM_PATH"), env.get("HIP_PATH"), "/opt/rocm"]
    if hipconfig:
        roots.insert(0, str(Path(hipconfig).resolve().parent.parent))
    for root in filter(None, roots):
        if (Path(root) / "bin" / "hipconfig").is_file():
            return Path(root)
    return None


def nvidia_gpu(env: dict[str, str]) -> bool:
    """An NVIDIA driver is loaded (a toolkit alone, on a machine without the GPU, is not
    enough: a CUDA build would not even import there)."""
    return Path("/proc/driver/nvidia/version").is_file() or _which("nvidia-smi", env) is not None


def vulkan_ready(env: dict[str, str]) -> bool:
    """The Vulkan headers and the glslc shader compiler are both there."""
    sdk = env.get("VULKAN_SDK")
    headers = [Path("/usr/include/vulkan/vulkan.h"), Path("/usr/local/include/vulkan/vulkan.h")]
    if sdk:
        headers.insert(0, Path(sdk) / "include" / "vulkan" / "vulkan.h")
    return _which("glslc", env) is not None and any(h.is_file() for h in headers)


def detect(env: dict[str, str], system: str, machine: str) -> Plan:
    """The build this machine should get (LLMLB_GPU=auto|cuda|metal|rocm|vulkan|cpu)."""
    wanted = (env.get("LLMLB_GPU") or "auto").strip().lower()
    if wanted not in (*BACKENDS, "auto"):
        raise SystemExit(f"LLMLB_GPU={wanted!r}: choose auto, {', '.join(BACKENDS)}")
    rpc = ("-DGGML_RPC=ON",)
    nvcc = find_nvcc(env)
    rocm = find_rocm(env)
    if wanted == "cuda" or (wanted == "auto" and nvcc and nvidia_gpu(env)):
        extra: dict[str, str] = {}
        if nvcc:
            extra["CUDACXX"] = nvcc
        # Build only for the GPU that is here (minutes instead of an hour for every arch).
        arch = ("-DCMAKE_CUDA_ARCHITECTURES=native",) if _which("nvidia-smi", env) else ()
        return Plan("cuda", ("-DGGML_CUDA=ON", *arch, *rpc), extra, f"nvcc at {nvcc}")
    if wanted == "metal" or (wanted == "auto" and system == "Darwin" and machine == "arm64"):
        return Plan("metal", ("-DGGML_METAL=ON", *rpc), {}, "macOS on Apple Silicon")
    if wanted == "rocm" or (wanted == "auto" and rocm and Path("/dev/kfd").exists()):
        extra = {}
        if rocm:
            extra = {"HIPCXX": str(rocm / "llvm" / "bin" / "clang"), "HIP_PATH": str(rocm)}
        return Plan("rocm", ("-DGGML_HIP=ON", *rpc), extra, f"ROCm at {rocm}")
    if wanted == "vulkan" or (wanted == "auto" and vulkan_ready(env)):
        return Plan("vulkan", ("-DGGML_VULKAN=ON", *rpc), {}, "Vulkan headers and glslc")
    if system == "Darwin":  # Metal is on by default on macOS; an Intel Mac runs on the CPU
        return Plan("cpu", ("-DGGML_METAL=OFF", *rpc), {}, "no accelerator found")
    if wanted == "cpu":
        return Plan("cpu", rpc, {}, "chosen by LLMLB_GPU")
    if nvcc:
        return Plan(
            "cpu", rpc, {}, f"a CUDA toolkit ({nvcc}) but no NVIDIA GPU: LLMLB_GPU=cuda forces it"
        )
    return Plan("cpu", rpc, {}, "no accelerator found")


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=cwd)


def sdist() -> Path:
    """llama-cpp-python's source, downloaded once and unpacked in the cache."""
    root = cache_dir() / f"llama-cpp-python-{VERSION}-src"
    tree = root / f"llama_cpp_python-{VERSION}"
    archive = root / f"llama_cpp_python-{VERSION}.tar.gz"
    if (tree / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        return archive
    root.mkdir(parents=True, exist_ok=True)
    if not archive.is_file():
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        _run([*pip, f"llama-cpp-python=={VERSION}", "-d", str(root)])
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: refuse links out of the tree
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)  # PyPI's own sdist of the pinned version
    return archive


def marker_path() -> Path:
    """The file in this interpreter's prefix that records the installed build."""
    return Path(sys.prefix) / MARKER


def installed_key() -> str | None:
    """The key of the build installed here, if this script installed it."""
    try:
        data = json.loads(marker_path().read_text())
    except (OSError, ValueError):
        return None
    return data.get("key") if isinstance(data, dict) else None


def build_wheel(plan: Plan) -> Path:
    """The wheel for `plan`, built once into its own folder."""
    out = cache_dir() / "wheels" / plan.key
    wheels = sorted(out.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    archive = sdist()
    env = {**os.environ, **plan.env, "CMAKE_ARGS": " ".join(plan.cmake_args)}
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"building llama-cpp-python {VERSION} for {plan.backend} (a few minutes)", flush=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir"]
    try:
        _run([*pip, "-w", str(tmp), str(archive)], env=env)
    except subprocess.CalledProcessError:
        failed_marker(plan).write_text("the build failed; delete this file to try again\n")
        raise
    tmp.rename(out)
    return sorted(out.glob("llama_cpp_python-*.whl"))[-1]


def failed_marker(plan: Plan) -> Path:
    """Left by a failed build, so `make run` does not spend minutes failing again."""
    path = cache_dir() / "wheels" / f"{plan.key}.failed"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def install(plan: Plan) -> None:
    """Build (or reuse) the wheel for `plan` and install it here, unless it already is."""
    if installed_key() == plan.key:
        print(f"llama.cpp backend: {plan.backend} (already built: {' '.join(plan.cmake_args)})")
        return
    wheel = build_wheel(plan)
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall"]
    _run([*pip, str(wheel)])
    # numpy etc. (llama-cpp-python's own dependencies) come with the project's install.
    marker_path().write_text(json.dumps({"key": plan.key, "backend": plan.backend}) + "\n")
    print(f"llama.cpp backend: {plan.backend} ({plan.reason}; {' '.join(plan.cmake_args)})")


def rpc_server() -> Path:
    """ggml-rpc-server from the same source (CPU, RPC on), built once."""
    out = cache_dir() / f"rpc-server-{VERSION}" / "ggml-rpc-server"
    if out.is_file():
        return out
    archive = sdist()
    llama_cpp = archive.parent / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    build = archive.parent / "build-rpc"
    options = [
        "-DGGML_RPC=ON",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DCMAKE_BUILD_TYPE=Release",
    ]
    if platform.system() == "Darwin":
        options.append("-DGGML_METAL=OFF")
    jobs = str(os.cpu_count() or 2)
    _run(["cmake", "-S", str(llama_cpp), "-B", str(build), *options])
    _run(["cmake", "--build", str(build), "--target", "ggml-rpc-server", "-j", jobs])
    built = next(build.rglob("ggml-rpc-server"))
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, out)
    shutil.rmtree(build, ignore_errors=True)
    return out


def main() -> None:
    """`install` (the default), `detect` or `rpc-server`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what", nargs="?", default="install", choices=["install", "detect", "rpc-server"]
    )
    what = parser.parse_args().what
    plan = detect(dict(os.environ), platform.system(), platform.machine())
    if what == "detect":
        print(f"{plan.backend} ({plan.reason}; {' '.join(plan.cmake_args)})")
    elif what == "rpc-server":
        print(rpc_server())
    else:
        auto = os.environ.get("LLMLB_GPU", "auto") == "auto"
        if auto and plan.backend != "cpu" and failed_marker(plan).is_file():
            print(f"the {plan.backend} build failed before ({failed_marker(plan)}): using the CPU")
            plan = Plan("cpu", ("-DGGML_RPC=ON",), {}, f"the {plan.backend} build failed")
        try:
            install(plan)
        except subprocess.CalledProcessError:
            if plan.backend == "cpu" or not auto:
                raise
            # A toolkit that is there but broken should not leave the user with no app.
            print(f"the {plan.backend} build failed: building for the CPU instead", flush=True)
            install(Plan("cpu", ("-DGGML_RPC=ON",), {}, f"the {plan.backend} build failed"))


if __name__ == "__main__":
    main()
