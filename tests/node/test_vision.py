"""Images: a vision model registers with its projector (fetched beside the weights, resumably),
its capabilities come from the GGUF headers, and a chat with an image part reaches the model
through llama.cpp's libmtmd; a text-only model answers 400 for an image."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from pathlib import Path

import pytest

from tests.conftest import RunningBalancer, balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.conftest import CHAT_FILE, CHAT_REPO, hub_entry, register_ready
from tests.support.tiny_gguf import write_embedding_gguf, write_mmproj_gguf
from tests.support.waiting import eventually

VISION_REPO = "tiny/vision-gguf"
MMPROJ = "mmproj-tiny-vision-f16.gguf"
IMAGE_TOKENS = 4  # (28 / 14) ** 2 patches: what one image costs in the tiny projector


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG of one colour (what the Playground sends for an attached picture)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def image_message(text: str, image: bytes) -> dict[str, object]:
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": data_url(image)}},
        ],
    }


@pytest.fixture(scope="session")
def projector_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # Wide enough (~1.5 MB) that a throttled download of it can be cut midway.
    path = write_mmproj_gguf(tmp_path_factory.mktemp("mmproj") / MMPROJ, n_embd=128, n_ff=512)
    return path.read_bytes()


@pytest.fixture
def vision_hub(
    model_hub: FakeHub, tiny_models: dict[str, bytes], projector_bytes: bytes
) -> FakeHub:
    model_hub.add(
        FakeRepo(
            VISION_REPO,
            {
                "tiny-vision-F32.gguf": tiny_models["chat"],
                MMPROJ: projector_bytes,
                "README.md": b"#",
            },
            pipeline_tag="image-text-to-text",
        )
    )
    return model_hub


async def test_a_vision_model_reads_an_image_and_counts_its_tokens(
    served: RunningBalancer, vision_hub: FakeHub, tmp_path: Path
) -> None:
    name = await register_ready(served, VISION_REPO)
    entry = await hub_entry(served, name)
    assert entry is not None
    assert set(entry["capabilities"]) == {"TextGeneration", "Vision"}
    folder = tmp_path / "data" / "node" / "models" / "tiny--vision-gguf"
    assert (folder / MMPROJ).read_bytes() == vision_hub.repos[VISION_REPO].files[MMPROJ]
    assert len(vision_hub.file_requests(MMPROJ)) == 1  # fetched once, by the node

    body = {"model": name, "max_tokens": 5, "temperature": 0}
    status, text_only = await served.post(
        "/v1/chat/completions",
        {**body, "messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}]}]},
    )
    assert status == 200, text_only
    status, answer = await served.post(
        "/v1/chat/completions", {**body, "messages": [image_message("what?", png(40, 30))]}
    )
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"]  # nonsense, but real tokens
    assert answer["usage"]["completion_tokens"] >= 1
    # The image's embeddings are prompt tokens (plus the newline joining the two parts).
    extra = answer["usage"]["prompt_tokens"] - text_only["usage"]["prompt_tokens"]
    assert IMAGE_TOKENS <= extra <= IMAGE_TOKENS + 2

    # Streaming, two images, and a text chat after them in the same slots: all still answer.
    stream = {
        **body,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [image_message("a", png(8, 8)), image_message("b", png(64, 16, (0, 0, 255)))],
    }
    async with served.http.post(
        served.url + "/v1/chat/completions", json=stream, headers=served.admin
    ) as r:
        assert r.status == 200
        events = (await r.text()).split("\n\n")
    usage = [e for e in events if '"usage": {' in e]
    assert usage and '"completion_tokens"' in usage[-1]
    status, again = await served.post(
        "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": "what?"}]}
    )
    assert status == 200, again


async def test_an_unreadable_image_is_a_400_not_a_crash(
    served: RunningBalancer, vision_hub: FakeHub
) -> None:
    name = await register_ready(served, VISION_REPO)
    for url, code in (
        ("data:image/png;base64," + base64.b64encode(b"not a picture").decode(), "invalid_image"),
        ("https://example.com/cat.png", "unsupported_image_url"),
    ):
        message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
        status, body = await served.post(
            "/v1/chat/completions", {"model": name, "messages": [message]}
        )
        assert status == 400, body
        assert body["error"]["code"] == code
        assert body["error"]["param"] == "messages"


async def test_a_text_model_answers_400_naming_the_vision_capability(
    served: RunningBalancer, model_hub: FakeHub
) -> None:
    name = await register_ready(served, CHAT_REPO)
    status, body = await served.post(
        "/v1/chat/completions",
        {"model": name, "messages": [image_message("what?", png(8, 8))]},
    )
    assert status == 400, body
    assert body["error"]["code"] == "model_not_vision"
    assert body["error"]["param"] == "messages"
    assert "Vision" in body["error"]["message"]
    node = served.ctx.local_node
    assert node is not None
    runner = node.engines.runners.get(name)
    assert runner is None or not runner.loaded  # refused without loading the model for it


async def test_the_projector_download_resumes_where_it_was_cut(
    served: RunningBalancer, vision_hub: FakeHub, tmp_path: Path
) -> None:
    size = len(vision_hub.repos[VISION_REPO].files[MMPROJ])
    partial = tmp_path / "data" / "node" / "models" / "tiny--vision-gguf" / (MMPROJ + ".partial")
    vision_hub.bytes_per_second = 1_000_000
    status, body = await served.post("/v0/models/register", {"repo": VISION_REPO})
    assert status == 201, body

    async def midway() -> bool:
        return partial.exists() and partial.stat().st_size > size // 4

    await eventually(midway, timeout=30)
    vision_hub.fail_after_bytes = 0  # the connection drops mid-body
    await eventually(lambda: _requests(vision_hub, 2), timeout=30)
    vision_hub.fail_after_bytes = None
    vision_hub.bytes_per_second = None

    async def ready() -> bool:
        entry = await hub_entry(served, VISION_REPO)
        return entry is not None and entry["lifecycle_status"] == "ready"

    await eventually(ready, timeout=60)
    ranges = [r.range for r in vision_hub.file_requests(MMPROJ)]
    resumed = [int(r[6:-1]) for r in ranges[1:] if r and r.startswith("bytes=")]
    assert resumed and all(0 < offset < size for offset in resumed), ranges
    folder = partial.parent
    assert (folder / MMPROJ).read_bytes() == vision_hub.repos[VISION_REPO].files[MMPROJ]


async def _requests(hub: FakeHub, n: int) -> bool:
    return len(hub.file_requests(MMPROJ)) >= n


# -- capabilities from the header, not the name ---------------------------------------------------
async def test_capabilities_come_from_the_gguf_header_not_the_repo_name(
    balancer: RunningBalancer, fake_hub: FakeHub, tiny_models: dict[str, bytes], tmp_path: Path
) -> None:
    rerank = write_embedding_gguf(tmp_path / "r.gguf").read_bytes()
    # llama.cpp's pooling type 4 (rank): patch the header's value in place (same length).
    key = b"llama.pooling_type"
    at = rerank.index(key) + len(key) + 4  # the u32 value type, then the value
    rerank = rerank[:at] + struct.pack("<I", 4) + rerank[at + 4 :]
    fake_hub.add(FakeRepo("acme/vectors-gguf", {"v-F32.gguf": tiny_models["embed"]}))
    fake_hub.add(FakeRepo("acme/embed-chat-gguf", {CHAT_FILE: tiny_models["chat"]}))
    fake_hub.add(FakeRepo("acme/judge-gguf", {"j-F32.gguf": rerank}))
    expected = {
        "acme/vectors-gguf": ["Embedding"],  # no hint in the name: the pooling type says so
        "acme/embed-chat-gguf": ["TextGeneration"],  # "embed" in the name, a chat model inside
        "acme/judge-gguf": ["Reranking"],
    }
    for repo, capabilities in expected.items():
        status, body = await balancer.post("/v0/models/register", {"repo": repo})
        assert status == 201, body
        entry = await hub_entry(balancer, body["name"])
        assert entry is not None and entry["capabilities"] == capabilities, repo
        assert len(fake_hub.header_reads(next(iter(fake_hub.repos[repo].files)))) == 1
    # A projector is no model: registering it by name says what to register instead.
    fake_hub.add(
        FakeRepo("acme/proj-gguf", {MMPROJ: write_mmproj_gguf(tmp_path / "p.gguf").read_bytes()})
    )
    status, body = await balancer.post(
        "/v0/models/register", {"repo": "acme/proj-gguf", "filename": MMPROJ}
    )
    assert status == 400 and body["error"]["code"] == "projector_not_model", body


async def test_an_unreadable_header_registers_a_text_model_with_a_warning(
    balancer: RunningBalancer, fake_hub: FakeHub
) -> None:
    status, body = await balancer.post("/v0/models/register", {"repo": "acme/one-gguf"})
    assert status == 201, body
    entry = await hub_entry(balancer, body["name"])
    assert entry is not None and entry["capabilities"] == ["TextGeneration"]
    assert any("header" in w for w in body.get("warnings", [])), body


async def test_the_catalogs_vision_model_brings_its_projector(balancer: RunningBalancer) -> None:
    status, body = await balancer.post("/v0/models/register", {"model_id": "gemma3"})
    assert status == 201, body
    status, manifest = await balancer.get("/v0/models/registry/gemma3/manifest.json")
    assert status == 200, manifest
    assert [(f["name"], f["size"]) for f in manifest["files"]] == [
        ("gemma-3-4b-it-Q4_K_M.gguf", 2489757856),
        ("mmproj-model-f16.gguf", 851251104),
    ]
    assert "Vision" in manifest["capabilities"]


async def test_image_chats_run_beside_text_chats_in_the_context_sized_to_the_model(
    tmp_path: Path, vision_hub: FakeHub
) -> None:
    settings = balancer_settings(tmp_path / "d", local_node=True)  # context sized to the model
    async with run_balancer(settings) as b:
        name = await register_ready(b, VISION_REPO)
        node = b.ctx.local_node
        assert node is not None
        body = {"model": name, "max_tokens": 8, "temperature": 0}
        chats = [
            b.post("/v1/chat/completions", {**body, "messages": [image_message(t, png(20, 20))]})
            for t in ("one", "two", "three")
        ]
        chats.append(
            b.post("/v1/chat/completions", {**body, "messages": [{"role": "user", "content": "x"}]})
        )
        answers = await asyncio.gather(*chats)
        assert [status for status, _ in answers] == [200] * 4, answers
        runner = node.engines.runners[name]
        assert runner.context is not None and runner.ctx_per_slot == runner.context.per_sequence
        assert all(a["usage"]["prompt_tokens"] > IMAGE_TOKENS for _, a in answers[:3])


async def test_a_repo_of_several_models_gives_each_the_projector_in_its_folder(
    balancer: RunningBalancer,
    fake_hub: FakeHub,
    tiny_models: dict[str, bytes],
    projector_bytes: bytes,
) -> None:
    files = {
        "small/model-F32.gguf": tiny_models["chat"],
        "small/mmproj-small-f16.gguf": projector_bytes,
        "big/model-F32.gguf": tiny_models["chat"],
        "big/mmproj-big-f16.gguf": projector_bytes,
    }
    fake_hub.add(FakeRepo("acme/family-gguf", files))
    for folder in ("small", "big"):
        body = {"repo": "acme/family-gguf", "filename": f"{folder}/model-F32.gguf"}
        status, answer = await balancer.post("/v0/models/register", body)
        assert status == 201, answer
        name = answer["name"]
        _, manifest = await balancer.get(f"/v0/models/registry/{name}/manifest.json")
        assert [f["name"] for f in manifest["files"]] == [
            f"{folder}/model-F32.gguf",
            f"{folder}/mmproj-{folder}-f16.gguf",
        ]
        await balancer.delete(f"/v0/models/{name}")
