"""`llmlb --self-test` as a real process: it renders the real window, and it fails, saying why,
when Qt cannot start or Japanese text has no font."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    "Overview",
    "Models › Model Hub",
    "Models › Local",
    "Playground",
    "Nodes",
    "Requests",
    "Logs",
    "Settings",
)


def self_test(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "--self-test"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
    )


def fc(*args: str) -> str:
    if shutil.which("fc-match") is None:
        pytest.skip("fontconfig's tools (fc-match, fc-list) are not installed")
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def latin_only_fontconfig(tmp: Path) -> dict[str, str]:
    """A fontconfig setup that knows one Latin font and no Japanese one (a bare desktop)."""
    latin = fc("fc-match", "-f", "%{file}", "sans-serif:lang=en")
    if not latin or latin in fc("fc-list", "-f", "%{file}\n", ":lang=ja").splitlines():
        pytest.skip("no Latin-only sans-serif font here")
    fonts = tmp / "fonts"
    fonts.mkdir()
    shutil.copy(latin, fonts)
    conf = tmp / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>{fonts}</dir><cachedir>{tmp / 'cache'}</cachedir></fontconfig>",
        encoding="utf-8",
    )
    return {"FONTCONFIG_FILE": str(conf)}


def japanese_font() -> Path:
    found = fc("fc-list", "-f", "%{file}\n", ":lang=ja").split()
    if not found:
        pytest.skip("no Japanese font is installed here (fonts-noto-cjk on Debian)")
    return Path(sorted(found)[0])


def test_self_test_renders_every_page_and_prints_ok() -> None:
    out = self_test(QT_QPA_PLATFORM="offscreen")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    for page in PAGES:
        assert f"window: {page}: rendered" in out.stderr
    assert "Japanese text:" in out.stderr
    assert "FAILED" not in out.stderr


def test_self_test_fails_when_qt_cannot_load_its_platform_plugin() -> None:
    out = self_test(QT_QPA_PLATFORM="nonexistent-plugin")
    assert out.returncode == 1, out.stderr
    assert "ok" not in out.stdout
    assert "self-test FAILED: Qt cannot start (platform plugin nonexistent-plugin)" in out.stderr


def test_self_test_fails_when_no_font_has_japanese(tmp_path: Path) -> None:
    # From the source tree there is no bundled font to fall back on.
    out = self_test(QT_QPA_PLATFORM="offscreen", **latin_only_fontconfig(tmp_path))
    assert out.returncode == 1, out.stderr
    assert "ok" not in out.stdout
    assert "self-test FAILED: Japanese text would show as boxes" in out.stderr


FALLBACK = """
import sys
from pathlib import Path
from PySide6.QtWidgets import QApplication, QLabel
from app.ui.fonts import ensure_japanese, missing_glyphs
app = QApplication([])
print(repr(missing_glyphs(app.font())))
print(ensure_japanese(app, Path(sys.argv[1])))
print(repr(missing_glyphs(app.font())), repr(missing_glyphs(QLabel().font())))
"""


def test_a_bundled_font_fills_in_where_no_installed_font_has_japanese(tmp_path: Path) -> None:
    env = latin_only_fontconfig(tmp_path)
    bundled = tmp_path / "bundle-fonts"
    bundled.mkdir()
    shutil.copy(japanese_font(), bundled)
    out = subprocess.run(
        [sys.executable, "-c", FALLBACK, str(bundled)],
        cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, family, after = out.stdout.splitlines()
    assert before == repr("設定モデルハブ")  # boxes without it
    assert family != "None"
    assert after == "'' ''"  # the app font and a new widget's font both draw every character
