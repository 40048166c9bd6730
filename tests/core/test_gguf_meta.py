"""What a GGUF is, from the first bytes of its header (read over HTTP before any node has it)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from app.core.gguf_meta import read_prefix
from tests.support.tiny_gguf import write_embedding_gguf, write_llama_gguf, write_mmproj_gguf


def test_each_kind_of_file_says_what_it_is(tmp_path: Path) -> None:
    chat = read_prefix(write_llama_gguf(tmp_path / "c.gguf").read_bytes())
    embed = read_prefix(write_embedding_gguf(tmp_path / "e.gguf").read_bytes())
    proj = read_prefix(write_mmproj_gguf(tmp_path / "p.gguf").read_bytes())
    assert chat is not None and chat.capabilities() == ("TextGeneration",)
    assert embed is not None and embed.capabilities() == ("Embedding",)
    assert proj is not None and proj.is_vision_projector() and proj.capabilities() is None


def test_a_prefix_is_enough_and_a_short_one_says_it_does_not_know(tmp_path: Path) -> None:
    data = write_embedding_gguf(tmp_path / "e.gguf").read_bytes()
    start = data.index(b"tokenizer.ggml.model") + 20  # the model's own keys, then one key name
    meta = read_prefix(data[:start])
    assert meta is not None and meta.complete and meta.capabilities() == ("Embedding",)
    cut = read_prefix(data[: data.index(b"llama.pooling_type")])
    assert cut is not None and not cut.complete and cut.capabilities() is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GGUF",
        b"not a gguf at all" * 10,
        b"GGUF" + struct.pack("<IQQ", 3, 1, 1 << 40),  # a hostile key count
        b"GGUF" + struct.pack("<IQQQ", 3, 1, 1, 1 << 40),  # a hostile string length
        b"GGUF" + struct.pack("<IQQQ", 3, 1, 1, 3) + b"abc" + struct.pack("<I", 99),  # bad type
    ],
)
def test_hostile_or_foreign_bytes_are_not_a_header(data: bytes) -> None:
    meta = read_prefix(data)
    assert meta is None or meta.capabilities() is None
