"""Every route, fuzzed from the OpenAPI document with schemathesis: whatever a client sends, the
balancer answers without a 5xx of its own, without a traceback, with OpenAI-shaped errors and
answers the document declares, and stays healthy.

The balancer runs on 127.0.0.1 in a thread of its own (schemathesis calls it synchronously over
HTTP); Hugging Face is a refused port, so registrations from a repo fail fast with a 502.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.context import AppContext
from app.server.openapi import build_document
from tests.conftest import REFUSED_ENDPOINT, balancer_settings

# Small but deterministic: each operation gets its coverage cases (boundary values, wrong types,
# missing fields) plus this many generated ones, the same on every run. A deeper local run:
# LLMLB_FUZZ_EXAMPLES=200 LLMLB_FUZZ_SEED=7 pytest tests/server/test_fuzz.py
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": int(os.environ.get("LLMLB_FUZZ_SEED", "20261130")),
        "generation": {
            "max-examples": int(os.environ.get("LLMLB_FUZZ_EXAMPLES", "15")),
            "deterministic": True,
            "database": "none",
            # Credentials come from the test (admin and node tokens), so requests get past
            # authentication to the handlers; auth itself has its own tests.
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_dict(copy.deepcopy(build_document()), config=CONFIG)

# 5xx answers that are not bugs: an upstream failed, or the service cannot answer *now*. Each is
# recognised by its `code`, never by its status alone, so a crash (500 `server_error`) or any
# other 5xx still fails the run.
UPSTREAM_ANSWERS = {
    (502, "hf_unreachable"),  # Hugging Face is a refused port here
    (502, "node_unavailable"),  # the fuzz run's node is a refused port too
    (503, "serving_paused"),  # the fuzzer paused serving with PUT /v0/serving
    (503, "no_capable_nodes"),  # a model registered from the catalog, with no node to run it
}


@dataclass(frozen=True)
class Live:
    """A balancer running in its own thread and loop."""

    url: str
    token: str
    node_token: str  # of a node registered up front, so heartbeats get past their auth
    known: dict[str, str]  # path parameter -> a resource that exists (a node, a model...)

    @property
    def admin(self) -> dict[str, str]:
        """The admin Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def credentials(self) -> dict[str, str]:
        """What every fuzzed request carries: the admin token and a node's token."""
        return {**self.admin, "X-Node-Token": self.node_token}


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
            yield _with_resources(ctx.base_url, ctx.admin_token)
        finally:
            asyncio.run_coroutine_threadsafe(ctx.stop(), loop).result(60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


def _with_resources(url: str, token: str) -> Live:
    """Create one of each resource, so fuzzed requests also reach the handlers' later steps."""
    admin = {"Authorization": f"Bearer {token}"}

    def post(path: str, body: dict[str, Any]) -> Any:
        response = requests.post(url + path, json=body, headers=admin, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    node = post("/v0/nodes", {"url": REFUSED_ENDPOINT, "name": "fuzz-node"})
    known = {
        "node_id": node["node_id"],
        "name": post("/v0/models/register", {"model_id": "qwen3"})["name"],
        "cid": post("/v0/conversations", {"title": "fuzz"})["id"],
        "key_id": post("/v0/api-keys", {"name": "fuzz"})["id"],
    }
    return Live(url, token, node["node_token"], known)


def _loopback_only(case: schemathesis.Case[Any]) -> None:
    """No request may leave the machine: node URLs the fuzzer makes up (the balancer calls its
    nodes) become a refused port on loopback."""
    if case.path in {"/v0/nodes", "/v0/nodes/external"} and isinstance(case.body, dict):
        for key in ("url", "base_url"):
            if isinstance(value := case.body.get(key), str) and "://" in value:
                case.body[key] = REFUSED_ENDPOINT


def _aim_at_known_resources(case: schemathesis.Case[Any], live: Live) -> bool:
    """Point the case at the resources made up front; False when nothing changes (or DELETE)."""
    if case.method == "DELETE":
        return False
    changed = False
    if case.path_parameters:
        case.path_parameters = {k: live.known.get(k, v) for k, v in case.path_parameters.items()}
        changed = True
    if case.path == "/v0/health" and isinstance(case.body, dict) and "node_id" in case.body:
        case.body["node_id"] = live.known["node_id"]  # another node's id is a 401
        changed = True
    if case.path.startswith("/v1/") and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = live.known["name"]  # registered, past the 404 to the dispatcher
        changed = True
    return changed


def _error_code(response: schemathesis.Response) -> Any:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def check_answer(case: schemathesis.Case[Any], response: schemathesis.Response) -> None:
    """What a client or an attacker would notice: a crash, a traceback, an error of odd shape."""
    sent = f"{case.method} {case.formatted_path} {json.dumps(case.body, default=repr)[:1000]}"
    assert "Traceback" not in response.text, (sent, response.text[:2000])
    if case.path.startswith("/v1/messages"):
        _check_anthropic_error(sent, response)
    elif response.status_code >= 500:
        assert (response.status_code, _error_code(response)) in UPSTREAM_ANSWERS, (
            f"{sent} -> {response.status_code}: {response.text[:2000]}"
        )
    elif response.status_code >= 400:
        body = response.json()
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, (sent, body)
        assert isinstance(error["message"], str) and error["message"], (sent, body)
    # And the answer is one the document declares: its status, content type and body schema.
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )


# Anthropic's shape has no `code`: its 5xx that are not bugs go by status and type.
ANTHROPIC_UPSTREAM_ANSWERS = {(502, "api_error"), (503, "overloaded_error")}


def _check_anthropic_error(sent: str, response: schemathesis.Response) -> None:
    """/v1/messages errors: Anthropic's shape, and never a crash of ours (a 500)."""
    if response.status_code < 400:
        return
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, (sent, body)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], (sent, body)
    if response.status_code >= 500:
        assert (response.status_code, body["error"]["type"]) in ANTHROPIC_UPSTREAM_ANSWERS, (
            f"{sent} -> {response.status_code}: {response.text[:2000]}"
        )


@schema.parametrize()
def test_no_route_crashes(case: schemathesis.Case[Any], live: Live) -> None:
    """Generated and boundary requests to every route: never our 5xx, never a traceback."""
    _loopback_only(case)
    response = case.call(base_url=live.url, headers=live.credentials, timeout=15)
    check_answer(case, response)
    if _aim_at_known_resources(case, live):
        # The same request to resources that exist, past the handler's 404 (or 401).
        check_answer(case, case.call(base_url=live.url, headers=live.credentials, timeout=15))
    if case.path == "/v0/serving" and case.method == "PUT":
        # A paused balancer answers every /v1 call 503 before reading it: resume.
        requests.put(live.url + "/v0/serving", json={"paused": False}, headers=live.admin)


def test_still_healthy_after_the_fuzz(live: Live) -> None:
    """After everything above, the balancer still answers (runs last: pytest keeps file order)."""
    response = requests.get(live.url + "/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    listing = requests.get(live.url + "/v0/models", headers=live.admin, timeout=5)
    assert listing.status_code == 200, listing.text
    assert json.loads(listing.text) is not None
