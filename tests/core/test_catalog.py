"""The curated catalog: the shipped file is valid, and a broken one says where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.catalog import default_catalog_path, load_catalog
from app.core.errors import BadRequest, StartupError


def test_the_shipped_catalog_is_valid_and_complete() -> None:
    catalog = load_catalog()
    raw = json.loads(default_catalog_path().read_text())
    assert [e.id for e in catalog.entries] == [e["id"] for e in raw]  # the file's order
    assert len(catalog) >= 20
    for entry in catalog.entries:
        assert entry.format == "gguf" and entry.recommended_filename.endswith(".gguf")
        assert entry.context_length >= 2048
        assert entry.required_memory_bytes >= entry.size_bytes
    assert catalog.get("qwen3") is not None and catalog.get("gpt-oss-20b") is None


# Entries added here, checked against their Hub listings (issue 15: an embedding model).
ADDED_HERE = {"nomic-embed-text-v1.5"}


def test_the_catalog_keeps_the_upstream_facts() -> None:
    upstream_path = (
        Path(__file__).resolve().parents[3] / "shared/catalog/supported_models.upstream.json"
    )
    if not upstream_path.exists():
        pytest.skip("shared/ is not beside this checkout")
    upstream = {e["id"]: e for e in json.loads(upstream_path.read_text())}
    for entry in load_catalog().entries:
        if entry.id in ADDED_HERE:
            assert entry.id not in upstream
            continue
        source = upstream[entry.id]
        assert (entry.repo, entry.recommended_filename, entry.size_bytes) == (
            source["repo"],
            source["recommended_filename"],
            source["size_bytes"],
        )


def write(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(entries))
    return path


def good_entry() -> dict[str, object]:
    return json.loads(default_catalog_path().read_text())[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size_bytes": "big"}, "entry 'qwen3' (#0): field 'size_bytes' has the wrong type"),
        ({"size_bytes": -1}, "field 'size_bytes' must be a positive integer"),
        ({"format": "safetensors"}, "field 'format' must be 'gguf'"),
        ({"capabilities": ["Telepathy"]}, "field 'capabilities' has unknown values"),
        ({"tags": ["a", 3]}, "field 'tags' must be a list of strings"),
        ({"id": "Bad Id"}, "field 'id' must be lower-case"),
        ({"colour": "red"}, "field 'colour' is not a catalog field"),
        ({"context_length": True}, "field 'context_length' has the wrong type"),
    ],
)
def test_a_broken_entry_names_the_entry_and_the_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    entry = {**good_entry(), **change}
    with pytest.raises(StartupError) as err:
        load_catalog(write(tmp_path, [entry]))
    assert message in str(err.value)


def test_missing_fields_and_duplicates_are_named(tmp_path: Path) -> None:
    entry = good_entry()
    del entry["repo"]
    with pytest.raises(StartupError, match="field 'repo' is missing"):
        load_catalog(write(tmp_path, [entry]))
    with pytest.raises(StartupError, match="repeats the id 'qwen3'"):
        load_catalog(write(tmp_path, [good_entry(), good_entry()]))
    with pytest.raises(StartupError, match="not readable JSON"):
        (tmp_path / "bad.json").write_text("{")
        load_catalog(tmp_path / "bad.json")


def test_quantization_variants_follow_the_file_naming() -> None:
    catalog = load_catalog()
    assert catalog.get("qwen3").filename_for("Q8_0") == "Qwen_Qwen3-0.6B-Q8_0.gguf"
    assert catalog.get("qwq").filename_for("q5_k_m") == "qwq-32b-q5_k_m.gguf"
    with pytest.raises(BadRequest):
        catalog.get("qwen3").filename_for("../x")


def test_a_vision_entry_names_its_projector(tmp_path: Path) -> None:
    gemma = load_catalog().get("gemma3")
    assert gemma is not None and "Vision" in gemma.capabilities
    assert (gemma.mmproj_filename, gemma.mmproj_size_bytes) == ("mmproj-model-f16.gguf", 851251104)
    assert gemma.as_json()["mmproj_filename"] == "mmproj-model-f16.gguf"
    embed = load_catalog().get("nomic-embed-text-v1.5")
    assert embed is not None and embed.capabilities == ("Embedding",)
    projector = {"mmproj_filename": "mmproj.gguf", "mmproj_size_bytes": 10}
    for change, message in (
        ({**projector, "mmproj_size_bytes": "10"}, "'mmproj_size_bytes' has the wrong type"),
        ({"mmproj_filename": "mmproj.gguf"}, "come together"),
        ({**projector, "mmproj_filename": "mmproj.bin"}, "must name a .gguf file"),
        (projector, "must include 'Vision'"),
    ):
        with pytest.raises(StartupError, match=message):
            load_catalog(write(tmp_path, [{**good_entry(), **change}]))
