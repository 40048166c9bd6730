"""/proc/meminfo, read in one place: what the fit badge, the load check and heartbeats see."""

from __future__ import annotations

from pathlib import Path

from app.core.system import memory_info, probe


def test_this_machines_memory_is_read_in_bytes() -> None:
    info = memory_info()
    assert info is not None  # the tests run on Linux
    assert info.available_bytes is not None
    assert 0 < info.available_bytes <= info.total_bytes
    machine = probe()
    assert machine.ram_bytes == info.total_bytes


def test_kilobytes_become_bytes_and_a_missing_memavailable_is_none(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        2048 kB\nMemFree:   1024 kB\nMemAvailable:  1536 kB\n")
    info = memory_info(meminfo)
    assert info is not None
    assert (info.total_bytes, info.available_bytes) == (2048 * 1024, 1536 * 1024)
    meminfo.write_text("MemTotal:        2048 kB\nMemFree:   1024 kB\n")  # kernels before 3.14
    info = memory_info(meminfo)
    assert info is not None
    assert (info.total_bytes, info.available_bytes) == (2048 * 1024, None)


def test_no_meminfo_or_a_garbled_one_is_none(tmp_path: Path) -> None:
    assert memory_info(tmp_path / "absent") is None
    garbled = tmp_path / "meminfo"
    garbled.write_text("MemTotal: lots\n")
    assert memory_info(garbled) is None
