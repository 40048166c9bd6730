"""What a balancer sends a node is checked before anything is written: file names stay in the
model's folder, URLs are http(s), sizes and hashes are what they claim, names are safe folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.node.library import ModelLibrary
from app.node.manifest import ManifestError, check_model, parse_manifest

SHA = "a" * 64


# -- the manifest rules ----------------------------------------------------------------------------
def manifest_with(**file: Any) -> dict[str, Any]:
    entry = {"name": "model.gguf", "url": "https://huggingface.co/o/r/resolve/main/model.gguf"}
    entry.update(file)
    return {"files": [entry]}


@pytest.mark.parametrize(
    "name",
    [
        "../../../../tmp/x.sh",
        "a/../../b.gguf",
        "/etc/passwd",
        "C:/Windows/x.gguf",
        "c:x.gguf",
        "a\\..\\b.gguf",
        "a\x00b.gguf",
        "a\nb.gguf",
        "",
        ".",
        "a//b.gguf",
        "manifest.json",
        "model.gguf.partial",
        "x" * 600,
        42,
        None,
    ],
)
def test_a_file_name_that_could_leave_the_model_folder_is_refused(
    tmp_path: Path, name: object
) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(manifest_with(name=name), tmp_path / "models" / "m")


@pytest.mark.parametrize(
    "field_, value",
    [
        ("url", "file:///etc/passwd"),
        ("url", "ftp://example.com/x"),
        ("url", "http:///nohost"),
        ("url", 3),
        ("size", -1),
        ("size", "100"),
        ("size", True),
        ("size", 1 << 60),
        ("sha256", "abc"),
        ("sha256", "g" * 64),
    ],
)
def test_a_file_entry_with_a_bad_url_size_or_hash_is_refused(
    tmp_path: Path, field_: str, value: object
) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(manifest_with(**{field_: value}), tmp_path)


def test_a_manifest_needs_a_bounded_list_of_distinct_files(tmp_path: Path) -> None:
    bad: list[object] = [
        [],
        {"files": []},
        {"files": "x"},
        {"files": [manifest_with()["files"][0]] * 2},
    ]
    for data in bad:
        with pytest.raises(ManifestError):
            parse_manifest(data, tmp_path)
    many = [{"name": f"f{i}.gguf", "url": "https://h/x"} for i in range(300)]
    with pytest.raises(ManifestError):
        parse_manifest({"files": many}, tmp_path)


def test_a_good_manifest_keeps_subfolders_and_normalises_the_hash(tmp_path: Path) -> None:
    manifest = parse_manifest(
        manifest_with(name="Q4/model-00001-of-00002.gguf", size=10, sha256=SHA.upper()),
        tmp_path,
    )
    [f] = manifest.files
    assert (f.name, f.size, f.sha256) == ("Q4/model-00001-of-00002.gguf", 10, SHA)


def test_a_symlink_in_the_folder_cannot_lead_outside(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "link").symlink_to(tmp_path)
    with pytest.raises(ManifestError):
        parse_manifest(manifest_with(name="link/x.gguf"), folder)


@pytest.mark.parametrize("name", ["..", "../x", "a/b/c", "a\x00", "x" * 300, 7, "", "a/.."])
def test_a_model_name_that_is_no_safe_folder_is_refused(name: object) -> None:
    with pytest.raises(ManifestError):
        check_model(name)


def test_the_library_never_maps_a_name_outside_its_root(tmp_path: Path) -> None:
    library = ModelLibrary(tmp_path / "models")
    assert library.folder("org/repo:Q4").name == "org--repo@Q4"
    for name in ("..", ".", "a\\b", ""):
        with pytest.raises(ValueError):
            library.folder(name)
