"""How the settings in force reach a node's engine (what `LLMLB_*` variables change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import Settings
from app.node.agent import NodeConfig, node_config


def config(tmp_path: Path) -> NodeConfig:
    return node_config(
        Settings.from_env(), data_dir=tmp_path, balancer_url="http://127.0.0.1:1", credential="t"
    )


def test_engine_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    defaults = config(tmp_path).engine
    assert defaults.flash_attn and defaults.slots == 4  # llama-server's defaults
    monkeypatch.setenv("LLMLB_FLASH_ATTN", "0")
    monkeypatch.setenv("LLMLB_SLOTS", "2")
    monkeypatch.setenv("LLMLB_CONTEXT_SIZE", "1024")
    engine = config(tmp_path).engine
    assert (engine.flash_attn, engine.slots, engine.n_ctx) == (False, 2, 1024)
