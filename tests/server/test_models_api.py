"""The Model Hub and registration API, as a user of /v0 and /v1 sees it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from app.core.catalog import load_catalog
from tests.conftest import GGUF_BYTES, RunningBalancer
from tests.fakes.fake_hub import FakeHub
from tests.support.waiting import eventually


def assert_openai_error(body: object, code: str | None = None) -> dict[str, Any]:
    """The body is OpenAI's error shape (and carries `code` when given)."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


async def test_hub_lists_the_whole_catalog_in_its_fixed_order(balancer: RunningBalancer) -> None:
    status, hub = await balancer.get("/v0/models/hub")
    assert status == 200
    catalog = load_catalog()
    assert [m["id"] for m in hub] == [e.id for e in catalog.entries]
    first = hub[0]
    for field in (
        "name",
        "description",
        "repo",
        "size_bytes",
        "required_memory_bytes",
        "context_length",
        "tags",
        "capabilities",
        "quantization",
    ):
        assert field in first
    assert all(m["status"] == "available" and "lifecycle_status" not in m for m in hub)


async def test_register_then_duplicate_then_delete(balancer: RunningBalancer) -> None:
    status, body = await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    assert status == 201
    assert body["name"] == "qwen3"
    assert body["status"] == "registered"
    assert body["filename"] == "Qwen_Qwen3-0.6B-Q4_K_M.gguf"
    assert body["size_bytes"] == 484220320 and isinstance(body["warnings"], list)

    status, body = await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    assert status == 409
    assert_openai_error(body, "model_exists")

    _, hub = await balancer.get("/v0/models/hub")
    qwen3 = next(m for m in hub if m["id"] == "qwen3")
    assert qwen3["lifecycle_status"] == "registered" and qwen3["status"] == "available"

    _, registered = await balancer.get("/v0/models")
    assert [m["id"] for m in registered] == ["qwen3"]

    status, models = await balancer.get("/v1/models", headers={})
    assert status == 200 and models == {"object": "list", "data": []}

    status, _ = await balancer.delete("/v0/models/qwen3")
    assert status == 204
    status, body = await balancer.delete("/v0/models/qwen3")
    assert status == 404
    assert_openai_error(body, "model_not_found")
    _, registered = await balancer.get("/v0/models")
    assert registered == []


async def test_registration_survives_a_restart(tmp_path, balancer: RunningBalancer) -> None:
    from app.context import AppContext
    from tests.conftest import balancer_settings

    await balancer.post("/v0/models/register", {"model_id": "smollm2"})
    await balancer.ctx.stop()
    again = AppContext(balancer_settings(balancer.ctx.settings.data_dir))
    await again.start()
    try:
        async with balancer.http.get(again.base_url + "/v0/models", headers=balancer.admin) as r:
            assert [m["id"] for m in await r.json()] == ["smollm2"]
    finally:
        await again.stop()


async def test_manifest_names_the_files_a_node_fetches(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    status, manifest = await balancer.get("/v0/models/registry/qwen3/manifest.json")
    assert status == 200
    assert manifest["format"] == "gguf" and manifest["quantization"] == "Q4_K_M"
    [file] = manifest["files"]
    assert file["name"] == "Qwen_Qwen3-0.6B-Q4_K_M.gguf"
    assert file["url"] == (
        f"{fake_hub.url}/bartowski/Qwen_Qwen3-0.6B-GGUF/resolve/main/Qwen_Qwen3-0.6B-Q4_K_M.gguf"
    )
    status, body = await balancer.get("/v0/models/registry/nope/manifest.json")
    assert status == 404
    assert_openai_error(body, "model_not_found")


async def test_a_catalog_model_takes_the_hubs_exact_size_and_sha256_when_it_answers(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    # Some catalog sizes are rounded (4,920,000,000 bytes), and a node checks a download's
    # size exactly: the Hub's own listing wins (with the refused Hub of the test above, the
    # catalog's figures stand).
    status, body = await balancer.post("/v0/models/register", {"model_id": "qwen3"})
    assert status == 201, body
    assert body["size_bytes"] == len(GGUF_BYTES) != 484220320
    _, manifest = await balancer.get("/v0/models/registry/qwen3/manifest.json")
    [file] = manifest["files"]
    assert file["size"] == len(GGUF_BYTES) and file["sha256"]


async def test_register_another_quantization_of_a_catalog_model(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    status, body = await balancer.post("/v0/models/register", {"model_id": "qwen3:q8_0"})
    assert status == 201, body
    assert body["name"] == "qwen3:Q8_0"
    assert body["filename"] == "Qwen_Qwen3-0.6B-Q8_0.gguf"
    assert body["size_bytes"] == len(GGUF_BYTES) * 2
    status, body = await balancer.post("/v0/models/register", {"model_id": "qwen3:Q2_K"})
    assert status == 400
    error = assert_openai_error(body, "quantization_not_found")
    assert "Q8_0" in error["message"]  # it says which quantizations exist
    _, hub = await balancer.get("/v0/models/hub")
    assert hub[-1]["id"] == "qwen3:Q8_0" and hub[-1]["lifecycle_status"] == "registered"
    _, manifest = await balancer.get("/v0/models/registry/qwen3:Q8_0/manifest.json")
    assert manifest["files"][0]["sha256"]  # the Hub's LFS sha256, for the node to verify


@pytest.mark.parametrize(
    "form",
    [
        "acme/one-gguf",
        "https://huggingface.co/acme/one-gguf",
        "https://huggingface.co/acme/one-gguf/tree/main",
        "https://huggingface.co/acme/one-gguf/blob/main/model-Q4_K_M.gguf",
        "https://huggingface.co/acme/one-gguf/resolve/main/model-Q4_K_M.gguf?download=true",
        "hf.co/acme/one-gguf",
    ],
)
async def test_register_by_any_hugging_face_url_form(
    balancer: RunningBalancer, fake_hub: FakeHub, form: str
) -> None:
    status, body = await balancer.post("/v0/models/register", {"repo": form})
    assert status == 201, body
    assert body["name"] == "acme/one-gguf"
    assert body["filename"] == "model-Q4_K_M.gguf"
    assert body["size_bytes"] == len(GGUF_BYTES)
    assert body["required_memory_bytes"] > body["size_bytes"]
    status, model = await balancer.get("/v0/models/acme/one-gguf")
    assert status == 200 and model["quantization"] == "Q4_K_M"
    status, _ = await balancer.delete("/v0/models/acme/one-gguf")
    assert status == 204


async def test_a_repo_with_several_ggufs_needs_a_filename(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    status, body = await balancer.post("/v0/models/register", {"repo": "acme/many-gguf"})
    assert status == 400
    error = assert_openai_error(body, "filename_required")
    assert "many-Q4_K_M.gguf" in error["message"] and "many-Q8_0.gguf" in error["message"]
    assert "mmproj" not in error["message"]  # a projector is not a model to pick
    status, body = await balancer.post(
        "/v0/models/register",
        {"repo": "acme/many-gguf", "filename": "many-Q8_0.gguf", "display_name": "Many 8-bit"},
    )
    assert status == 201, body
    _, hub = await balancer.get("/v0/models/hub")
    assert hub[-1]["name"] == "Many 8-bit" and hub[-1]["quantization"] == "Q8_0"


async def test_a_split_gguf_registers_all_its_parts(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    status, body = await balancer.post("/v0/models/register", {"repo": "acme/split-gguf"})
    assert status == 201, body
    assert body["size_bytes"] == len(GGUF_BYTES) * 4
    _, manifest = await balancer.get("/v0/models/registry/acme/split-gguf/manifest.json")
    assert [f["name"] for f in manifest["files"]] == [
        "big-Q4_K_M-00001-of-00002.gguf",
        "big-Q4_K_M-00002-of-00002.gguf",
    ]


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"repo": "acme/no-gguf"}, "no_gguf", "no GGUF"),
        ({"repo": "acme/missing"}, "hf_repo_not_found", "not found"),
        ({"repo": "acme/one-gguf", "filename": "other.gguf"}, "file_not_found", "no file"),
        ({"repo": "https://example.com/acme/one-gguf"}, None, "not a Hugging Face URL"),
        ({"repo": "https://huggingface.co/datasets/acme/one-gguf"}, None, "not a model"),
        ({"repo": "acme/../etc"}, None, "not a Hugging Face model repo id"),
        ({"repo": "acme/one-gguf", "filename": "../../etc/passwd"}, None, "not a valid file"),
        ({"repo": "acme/one-gguf", "filename": "README.md"}, None, "not a GGUF"),
        ({"model_id": "no-such-model"}, "model_not_found", "not in the catalog"),
        ({"model_id": 42}, None, "must be a string"),
        ({"repo": ["acme/one-gguf"]}, None, "must be a string"),
        ({}, None, "either"),
        ({"model_id": "qwen3", "repo": "acme/one-gguf"}, None, "either"),
    ],
)
async def test_bad_registrations_say_why(
    balancer: RunningBalancer,
    fake_hub: FakeHub,
    body: dict[str, object],
    code: str | None,
    words: str,
) -> None:
    status, answer = await balancer.post("/v0/models/register", body)
    assert status == 400, answer
    error = assert_openai_error(answer, code)
    assert words in str(error["message"])


async def test_malformed_and_huge_bodies_are_refused(balancer: RunningBalancer) -> None:
    url = balancer.url + "/v0/models/register"
    for raw in (b"{not json", b"", b"[1, 2]", b"\xff\xfe"):
        async with balancer.http.post(url, data=raw, headers=balancer.admin) as r:
            assert r.status == 400
            assert_openai_error(await r.json())
    huge = json.dumps({"model_id": "qwen3", "pad": "x" * (10 * 1024 * 1024)}).encode()
    async with balancer.http.post(url, data=huge, headers=balancer.admin) as r:
        assert r.status == 413
        assert_openai_error(await r.json(), "payload_too_large")
    _, registered = await balancer.get("/v0/models")
    assert registered == []


@pytest.mark.parametrize("name", ["..%2F..%2Fetc", "a/b/c", "bad..name", "%2E%2E"])
async def test_path_traversal_in_names_is_refused(balancer: RunningBalancer, name: str) -> None:
    for method in ("GET", "DELETE"):
        async with balancer.http.request(
            method, f"{balancer.url}/v0/models/{name}", headers=balancer.admin
        ) as r:
            assert r.status in (400, 404)
            assert_openai_error(await r.json())
    status, body = await balancer.get(f"/v0/models/registry/{name}/manifest.json")
    assert status in (400, 404)
    assert_openai_error(body)


async def test_unknown_paths_and_methods_answer_in_openai_shape(balancer: RunningBalancer) -> None:
    status, body = await balancer.get("/v1/nothing-here", headers={})
    assert status == 404
    assert_openai_error(body)
    async with balancer.http.put(balancer.url + "/v0/models/hub", headers=balancer.admin) as r:
        assert r.status == 405
        assert_openai_error(await r.json())
    status, body = await balancer.get("/v1/models/qwen3", headers={})
    assert status == 404
    assert_openai_error(body, "model_not_found")


async def test_hub_shows_hugging_face_popularity_once_fetched(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    hub: list[dict[str, Any]] = []

    async def fetched() -> dict[str, Any] | None:
        nonlocal hub
        _, hub = await balancer.get("/v0/models/hub")
        qwen3 = next(m for m in hub if m["id"] == "qwen3")
        return qwen3 if "hf_info" in qwen3 else None

    qwen3 = await eventually(fetched, timeout=10)
    assert qwen3["hf_info"] == {"downloads": 123456, "likes": 78}
    # Repos the fake does not know simply have no popularity.
    assert "hf_info" not in hub[0]


@pytest.mark.parametrize("mode", ["hang", "error503", "down"])
async def test_hub_answers_at_once_when_hugging_face_fails(
    balancer: RunningBalancer, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    if mode == "down":
        fake_hub.stop()
    else:
        fake_hub.mode = mode
    for _ in range(3):
        started = time.monotonic()
        status, hub = await balancer.get("/v0/models/hub")
        elapsed = time.monotonic() - started
        assert status == 200 and len(hub) == len(load_catalog())
        assert all("hf_info" not in m for m in hub)
        assert elapsed < 1.0, f"hub waited {elapsed:.2f}s on Hugging Face"
    # Registering by repo needs the Hub: it fails with a reason, within the timeout.
    started = time.monotonic()
    status, body = await balancer.post("/v0/models/register", {"repo": "acme/one-gguf"})
    assert time.monotonic() - started < balancer.ctx.settings.hf_timeout + 3
    expected = {
        "hang": (504, "hf_timeout"),
        "error503": (502, "hf_unavailable"),
        "down": (502, "hf_unreachable"),
    }[mode]
    assert status == expected[0]
    error = assert_openai_error(body, expected[1])
    assert "Hugging Face" in str(error["message"])
    # A catalog model at its default quantization needs no Hub call at all.
    status, _ = await balancer.post("/v0/models/register", {"model_id": "phi4"})
    assert status == 201


async def test_concurrent_duplicate_registrations_first_one_wins(
    balancer: RunningBalancer,
) -> None:
    results = await asyncio.gather(
        *(balancer.post("/v0/models/register", {"model_id": "gemma3"}) for _ in range(8))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 7
