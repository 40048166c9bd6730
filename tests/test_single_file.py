"""The Linux single file (packaging/make_run.py) and the desktop entry, on a stand-in bundle:
a user runs the .run, it unpacks once, passes its arguments on, and adds itself to the menu."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import make_run  # noqa: E402 - packaging/ is not a package

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's bundle")


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A one-folder bundle as build.spec lays it out, with a program that says how it ran."""
    folder = tmp_path / "dist" / "llmlb"
    folder.mkdir(parents=True)
    program = folder / "llmlb"
    program.write_text('#!/bin/sh\necho "args: $*"\necho "exe: $0"\n', encoding="utf-8")
    program.chmod(0o755)
    shutil.copy(ROOT / "packaging/llmlb.desktop", folder)
    shutil.copy(ROOT / "packaging/install-desktop-entry.sh", folder)
    shutil.copy(ROOT / "resources/icon.png", folder / "llmlb.png")
    return folder


def run(program: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "share"),
    }
    return subprocess.run(
        [str(program), *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_the_single_file_unpacks_once_and_runs_the_app_with_its_arguments(
    bundle: Path, tmp_path: Path
) -> None:
    single = make_run.make(bundle, tmp_path / "llmlb.run")
    first = run(single, "--version", "two words", home=tmp_path)
    assert "unpacking into" in first.stderr
    assert first.stdout.splitlines()[0] == "args: --version two words"
    unpacked = Path(first.stdout.splitlines()[1].removeprefix("exe: "))
    assert unpacked.parent.parent.parent == tmp_path / "cache" / "llmlb" / "app"
    second = run(single, "serve", home=tmp_path)
    assert second.stderr == ""  # runs from the folder unpacked the first time
    assert second.stdout.splitlines() == ["args: serve", f"exe: {unpacked}"]
    # Only the finished folder is left: no half-unpacked one.
    assert [p.name for p in (tmp_path / "cache" / "llmlb" / "app").iterdir()] == [
        unpacked.parent.parent.name
    ]


def test_install_desktop_entry_puts_llmlb_in_the_menu(bundle: Path, tmp_path: Path) -> None:
    single = make_run.make(bundle, tmp_path / "my apps" / "llmlb.run")
    run(single, "--install-desktop-entry", home=tmp_path)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(tmp_path / "share" / "applications" / "llmlb.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Exec"] == f'"{single}"'  # the path has a space: quoted
    assert desktop["Icon"] == "llmlb"
    # The window's WM_CLASS is the application name the app sets (app/main.py).
    assert desktop["StartupWMClass"] == "llmlb"
    icon = tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "llmlb.png"
    assert icon.read_bytes() == (ROOT / "resources/icon.png").read_bytes()
