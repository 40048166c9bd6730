"""Where the agent CLIs the tests drive are: the env var naming the binary, the pinned
install `make agents` makes (.cache/agents, from tools/agents), or the PATH.

Without one the test skips and says how to get it; where CI installed them
(LLMLB_REQUIRE_AGENTS=1, set by .ci/run when npm is there) a missing one fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = ROOT / ".cache" / "agents" / "node_modules" / ".bin"
# Kept away from the vendor's servers: no telemetry, error reports, update checks or other
# traffic beyond the API calls, which go to the balancer on loopback.
QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
    # Anything else that tries the network meets a closed port on loopback instead.
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


def find_cli(name: str, env_var: str) -> str | None:
    """The binary of the CLI `name`: `env_var`, else the pinned install, else the PATH."""
    named = os.environ.get(env_var)
    if named:
        return named
    pinned = INSTALLED / name
    if pinned.exists():
        return str(pinned)
    return shutil.which(name)


def need_cli(name: str, env_var: str, what: str) -> str:
    """The CLI's binary; skips the test (fails it on CI) when there is none."""
    found = find_cli(name, env_var)
    if found is not None:
        return found
    reason = (
        f"{what} is not installed: run `make agents` (needs npm and the npm registry), "
        f"or set {env_var} to its binary"
    )
    if os.environ.get("LLMLB_REQUIRE_AGENTS") == "1":
        pytest.fail(reason + " (LLMLB_REQUIRE_AGENTS=1: CI installed the agent CLIs)")
    pytest.skip(reason)
