"""Each setting is declared once: its default, its environment variable and its description."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.desktop_config import DesktopConfig
from app.core.settings import DEFAULT_IDLE_UNLOAD_TTL, DEFAULT_PORT, Settings


def test_the_command_line_help_names_the_environment_variable() -> None:
    assert (
        Settings.cli_help("join_token") == f"{Settings.help('join_token')} (env LLMLB_JOIN_TOKEN)"
    )
    assert Settings.cli_help("host") == Settings.help("host")  # no variable sets it


def test_the_join_token_comes_from_the_environment_and_stays_out_of_reprs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMLB_JOIN_TOKEN", "llmlb-join-secret-from-the-environment")
    for settings in (Settings(data_dir=tmp_path), Settings.from_env(data_dir=tmp_path)):
        assert settings.join_token == "llmlb-join-secret-from-the-environment"
        assert "llmlb-join-secret" not in repr(settings)
    assert Settings.from_env(join_token="given").join_token == "given"  # the CLI wins


def test_the_desktop_app_starts_from_the_same_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMLB_CONFIG_DIR", str(tmp_path))
    config = DesktopConfig.load()
    assert (config.port, config.idle_unload_ttl) == (DEFAULT_PORT, DEFAULT_IDLE_UNLOAD_TTL)
    assert (Settings().port, Settings().idle_unload_ttl) == (config.port, config.idle_unload_ttl)
