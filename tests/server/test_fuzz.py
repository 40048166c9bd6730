"""Every route, fuzzed from the OpenAPI document with schemathesis: whatever a client sends, the
balancer answers without a 5xx of its own, without a traceback, with OpenAI-shaped errors, and
stays healthy.

The balancer runs on 127.0.0.1 in a thread of its own (schemathesis calls it synchronously over
HTTP); Hugging Face is a refused port, so registrations from a repo fail fast with a 502.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig

from app.context import AppContext
from app.server.openapi import build_document
from tests.conftest import REFUSED_ENDPOINT, balancer_settings

# Small but deterministic: each operation gets its coverage cases (boundary values, wrong types,
# missing fields) plus this many generated ones, the same on every run.
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261130,
        "generation": {"max-examples": 15, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_dict(copy.deepcopy(build_document()), config=CONFIG)

# 5xx answers that are not bugs: an upstream failed, or the service cannot answer *now*. Each is
# recognised by its `code`, never by its status alone, so a crash (500 `server_error`) or any
# other 5xx still fails the run.
UPSTREAM_ANSWERS = {
    (502, "upstream_error"),  # Hugging Face is unreachable here (a refused port)
    (503, "serving_paused"),  # the fuzzer paused serving with PUT /v0/serving
    (503, "no_capable_nodes"),  # a model registered from the catalog, with no node to run it
}


@dataclass(frozen=True)
class Live:
    """A balancer running in its own thread and loop."""

    url: str
    token: str

    @property
    def admin(self) -> dict[str, str]:
        """The admin Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One balancer for the whole fuzz run (the per-test fixtures are async and per test)."""
    home = tmp_path_factory.mktemp("fuzz-home")
    with pytest.MonkeyPatch.context() as env:
        for var in ("LLMLB_ADMIN_TOKEN", "LLMLB_JOIN_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
            env.delenv(var, raising=False)
        env.setenv("HOME", str(home))
        env.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        env.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
        env.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
        env.setenv("HF_ENDPOINT", REFUSED_ENDPOINT)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fuzzed-balancer", daemon=True)
        thread.start()
        ctx = AppContext(balancer_settings(Path(home) / "data"))
        asyncio.run_coroutine_threadsafe(ctx.start(), loop).result(60)
        try:
            yield Live(ctx.base_url, ctx.admin_token)
        finally:
            asyncio.run_coroutine_threadsafe(ctx.stop(), loop).result(60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


def _error_code(response: requests.Response) -> Any:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def check_answer(response: requests.Response) -> None:
    """What a client or an attacker would notice: a crash, a traceback, an error of odd shape."""
    assert "Traceback" not in response.text, response.text[:2000]
    if response.status_code >= 500:
        assert (response.status_code, _error_code(response)) in UPSTREAM_ANSWERS, (
            f"server error {response.status_code}: {response.text[:2000]}"
        )
    if response.status_code >= 400:
        body = response.json()
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        assert isinstance(error["message"], str) and error["message"], body


@schema.parametrize()
def test_no_route_crashes(case: schemathesis.Case, live: Live) -> None:
    """Generated and boundary requests to every route: never our 5xx, never a traceback."""
    response = case.call(base_url=live.url, headers=live.admin, timeout=15)
    check_answer(response)


def test_still_healthy_after_the_fuzz(live: Live) -> None:
    """After everything above, the balancer still answers (runs last: pytest keeps file order)."""
    response = requests.get(live.url + "/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    listing = requests.get(live.url + "/v0/models", headers=live.admin, timeout=5)
    assert listing.status_code == 200, listing.text
    assert json.loads(listing.text) is not None
