"""`make run` / `make test` build llama.cpp for the accelerator that is there: the choice from
what the machine has (a CUDA toolkit and NVIDIA's driver, Apple Silicon, ROCm and its device,
Vulkan's headers and compiler), LLMLB_GPU's override, RPC in every build, and one wheel folder
per backend and flags so a cached CPU wheel never stands in for a GPU build."""

from __future__ import annotations

import importlib.util
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load() -> ModuleType:
    # packaging/ is not a package (its name is taken by PyPA's library): load the script itself.
    spec = importlib.util.spec_from_file_location("llama_build", ROOT / "packaging/llama_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llama_build"] = module
    spec.loader.exec_module(module)
    return module


build = load()
HAS_NVIDIA_DRIVER = Path("/proc/driver/nvidia/version").is_file()


def tool(folder: Path, name: str) -> None:
    """A stand-in for a vendor's tool on PATH (the toolkits are outside our product)."""
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


def detect(bin_dir: Path, system: str = "Linux", machine: str = "x86_64", **env: str) -> Any:
    return build.detect({"PATH": str(bin_dir), **env}, system, machine)


def test_cuda_when_its_toolkit_and_an_nvidia_gpu_are_there(bin_dir: Path) -> None:
    tool(bin_dir, "nvcc")
    tool(bin_dir, "nvidia-smi")
    plan = detect(bin_dir)
    assert plan.backend == "cuda"
    assert plan.cmake_args == (
        "-DGGML_CUDA=ON",
        "-DCMAKE_CUDA_ARCHITECTURES=native",
        "-DGGML_RPC=ON",
    )
    assert plan.env["CUDACXX"] == str(bin_dir / "nvcc")


@pytest.mark.skipif(HAS_NVIDIA_DRIVER, reason="this machine has an NVIDIA driver")
def test_a_cuda_toolkit_without_the_gpu_builds_for_the_cpu_and_says_why(bin_dir: Path) -> None:
    tool(bin_dir, "nvcc")
    plan = detect(bin_dir)
    assert (plan.backend, plan.cmake_args) == ("cpu", ("-DGGML_RPC=ON",))
    assert "no NVIDIA GPU" in plan.reason and "LLMLB_GPU=cuda" in plan.reason
    forced = detect(bin_dir, LLMLB_GPU="cuda")
    assert forced.backend == "cuda" and "-DCMAKE_CUDA_ARCHITECTURES=native" not in forced.cmake_args


def test_metal_on_apple_silicon_and_the_cpu_on_an_intel_mac(bin_dir: Path) -> None:
    assert detect(bin_dir, "Darwin", "arm64").cmake_args == ("-DGGML_METAL=ON", "-DGGML_RPC=ON")
    intel = detect(bin_dir, "Darwin", "x86_64")
    assert intel.backend == "cpu" and "-DGGML_METAL=OFF" in intel.cmake_args


def test_vulkan_needs_its_headers_and_compiler(bin_dir: Path, tmp_path: Path) -> None:
    tool(bin_dir, "glslc")
    sdk = tmp_path / "sdk"
    if not Path("/usr/include/vulkan/vulkan.h").is_file():
        assert detect(bin_dir, VULKAN_SDK=str(sdk)).backend == "cpu"  # glslc alone: no
    (sdk / "include" / "vulkan").mkdir(parents=True)
    (sdk / "include" / "vulkan" / "vulkan.h").write_text("")
    plan = detect(bin_dir, VULKAN_SDK=str(sdk))
    assert plan.backend == "vulkan" and plan.cmake_args == ("-DGGML_VULKAN=ON", "-DGGML_RPC=ON")


def test_the_override_wins_and_a_typo_is_refused(bin_dir: Path) -> None:
    tool(bin_dir, "nvcc")
    tool(bin_dir, "nvidia-smi")
    assert detect(bin_dir, LLMLB_GPU="cpu").backend == "cpu"
    assert detect(bin_dir, LLMLB_GPU=" ROCm ").backend == "rocm"
    with pytest.raises(SystemExit, match="LLMLB_GPU='cudaa'"):
        detect(bin_dir, LLMLB_GPU="cudaa")


def test_every_backend_and_flag_set_has_its_own_wheel_folder(bin_dir: Path) -> None:
    tool(bin_dir, "nvcc")
    tool(bin_dir, "nvidia-smi")
    cuda = detect(bin_dir)
    cpu = detect(bin_dir, LLMLB_GPU="cpu")
    assert cuda.key != cpu.key and cuda.backend in cuda.key and cpu.backend in cpu.key
    assert detect(bin_dir).key == cuda.key  # the same build is found again
    forced = detect(bin_dir, LLMLB_GPU="cuda", PATH=str(bin_dir / "none"))
    assert forced.key != cuda.key  # other flags (no native arch): another folder
