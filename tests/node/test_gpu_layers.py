"""A model's GPU layers, set on the balancer, reach the node that runs it: checked as hostile
input, kept beside the files, taken without downloading again, and the model reloads with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.node.library import MANIFEST, ModelLibrary
from app.node.manifest import ManifestError, parse_manifest
from tests.conftest import RunningBalancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import CHAT_FILE, register_ready
from tests.support.waiting import eventually

URL = "https://huggingface.co/o/r/resolve/main/model.gguf"


def manifest(**fields: Any) -> dict[str, Any]:
    return {"files": [{"name": "model.gguf", "url": URL, "size": 4}], **fields}


# -- the rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, -1, 0, 1, 33, 1000])
def test_a_manifest_carries_the_models_gpu_layers(tmp_path: Path, value: int | None) -> None:
    assert parse_manifest(manifest(gpu_layers=value), tmp_path).gpu_layers == value


def test_a_manifest_from_an_older_balancer_leaves_it_to_the_node(tmp_path: Path) -> None:
    assert parse_manifest(manifest(), tmp_path).gpu_layers is None


@pytest.mark.parametrize("value", ["12", 12.0, True, False, -2, 1001, 10**40, [1], {"n": 1}])
def test_a_hostile_gpu_layers_is_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ManifestError, match="gpu_layers"):
        parse_manifest(manifest(gpu_layers=value), tmp_path)


# -- the node's copy --------------------------------------------------------------------------
def complete(tmp_path: Path, **fields: Any) -> ModelLibrary:
    """A library holding `m`, complete, with its stored manifest."""
    library = ModelLibrary(tmp_path / "models")
    folder = library.folder("m")
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF")
    library.mark_complete("m", parse_manifest(manifest(**fields), folder))
    return library


def test_a_new_value_replaces_the_stored_one_and_nothing_else(tmp_path: Path) -> None:
    library = complete(tmp_path, gpu_layers=None)
    folder = library.folder("m")
    gguf = (folder / "model.gguf").stat()
    assert library.update_settings("m", parse_manifest(manifest(gpu_layers=9), folder)) is True
    stored = library.manifest("m")
    assert stored is not None and stored.gpu_layers == 9
    assert json.loads((folder / MANIFEST).read_text())["gpu_layers"] == 9
    assert (folder / "model.gguf").stat().st_mtime_ns == gguf.st_mtime_ns
    # The same value again changes nothing; other files are a download's business, not this.
    assert library.update_settings("m", parse_manifest(manifest(gpu_layers=9), folder)) is False
    other = {"files": [{"name": "other.gguf", "url": URL, "size": 4}], "gpu_layers": 0}
    assert library.update_settings("m", parse_manifest(other, folder)) is False
    assert library.manifest("m") == stored


def test_a_manifest_stored_before_gpu_layers_existed_keeps_the_model_complete(
    tmp_path: Path,
) -> None:
    library = complete(tmp_path)
    path = library.folder("m") / MANIFEST
    old = json.loads(path.read_text())
    del old["gpu_layers"]  # as a node of the previous version wrote it
    path.write_text(json.dumps(old))
    stored = library.manifest("m")
    assert stored is not None and stored.gpu_layers is None
    assert library.model_path("m") is not None  # ready: nothing to fetch again


# -- a real node ------------------------------------------------------------------------------
async def test_a_changed_value_reaches_the_runner_without_downloading_again(
    served: RunningBalancer, model_hub: FakeHub
) -> None:
    name = await register_ready(served)
    node = served.ctx.local_node
    assert node is not None
    fetched = len(model_hub.file_requests(CHAT_FILE))
    gguf = node.library.model_path(name)
    assert gguf is not None
    mtime = gguf.stat().st_mtime_ns

    async def chat() -> None:
        body = {"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        status, answer = await served.post("/v1/chat/completions", body)
        assert status == 200, answer

    await chat()
    first = node.engines.runners[name]
    assert first.n_gpu_layers is None  # the node's own setting: auto

    for value in (0, 3, -1, None):
        async with served.http.patch(
            f"{served.url}/v0/models/{name}", json={"gpu_layers": value}, headers=served.admin
        ) as r:
            assert r.status == 200, await r.text()

        async def taken(value: int | None = value) -> bool:
            stored = node.library.manifest(name)
            return stored is not None and stored.gpu_layers == value

        await eventually(taken, timeout=15)
        await chat()
        runner = node.engines.runners[name]
        assert runner.n_gpu_layers == value and runner.loaded
    assert runner is not first  # loaded again with the value in force
    assert len(model_hub.file_requests(CHAT_FILE)) == fetched  # nothing downloaded again
    assert gguf.stat().st_mtime_ns == mtime
