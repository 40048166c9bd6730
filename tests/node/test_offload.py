"""The offload planner on real GGUF headers: all layers on the GPU when they fit its free
memory, as many as fit when they do not (the output layer first, then the last blocks, as
llama.cpp assigns them), none without a GPU, the user's override as asked; and a readable
refusal when the CPU's share cannot fit."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from app.node.engine.gguf_header import read_header
from app.node.engine.offload import ModelShape, check_fits, plan
from app.node.engine.types import EngineError, OutOfMemory
from tests.support.tiny_gguf import write_embedding_gguf, write_llama_gguf

CTX = 4096
MB = 2**20


@pytest.fixture(scope="module")
def shape(tmp_path_factory: pytest.TempPathFactory) -> ModelShape:
    path = write_llama_gguf(
        tmp_path_factory.mktemp("m") / "m.gguf", n_embd=256, n_layer=8, n_head=8, n_ff=512
    )
    return ModelShape.of(read_header(path))


def test_the_header_gives_every_layer_and_the_kv_cache(shape: ModelShape) -> None:
    assert shape.n_layer == 8
    # Each block: q, k, v, o (256x256) and gate, up, down (256x512) in f32, plus two norms.
    block = (4 * 256 * 256 + 3 * 256 * 512 + 2 * 256) * 4
    assert all(block <= b < block + 10 * 32 for b in shape.layer_bytes)  # + alignment
    # K and V of one token per layer: 2 x n_embd values in f16.
    assert shape.kv_bytes_per_token == (2 * 256 * 2,) * 8
    assert shape.n_vocab > 256  # the byte tokens and the pieces
    weights = sum(shape.layer_bytes) + shape.output_bytes + shape.input_bytes
    assert weights <= shape.file_bytes < weights + 1 * MB  # the rest is the header


def test_grouped_query_attention_needs_a_smaller_cache(tmp_path: Path) -> None:
    gqa = write_llama_gguf(tmp_path / "gqa.gguf", n_embd=256, n_head=8, n_head_kv=2)
    # K and V, 2 heads of 32 (256 / 8) values each, in f16: a quarter of 8 heads' cache.
    assert ModelShape.of(read_header(gqa)).kv_bytes_per_token[0] == 2 * 2 * 32 * 2


def test_tied_embeddings_count_for_the_output_layer(tmp_path: Path) -> None:
    tied = ModelShape.of(read_header(write_embedding_gguf(tmp_path / "e.gguf")))
    assert tied.output_bytes >= tied.input_bytes > 0


def test_without_a_gpu_every_layer_stays_on_the_cpu(shape: ModelShape) -> None:
    placed = plan(shape, CTX, None, None)
    assert (placed.gpu_layers, placed.offloaded, placed.gpu_bytes) == (0, 0, 0)
    assert placed.cpu_bytes == shape.total_need(CTX)
    assert "no GPU" in placed.reason


def test_a_gpu_with_room_takes_every_layer(shape: ModelShape) -> None:
    placed = plan(shape, CTX, 8 * 2**30, None)
    assert placed.gpu_layers == -1 and placed.full and placed.offloaded == 9  # 8 + output
    assert placed.gpu_bytes == sum(shape.layer_need(i, CTX) for i in range(8)) + shape.output_bytes
    # The token embeddings stay on the CPU (with the header's few KB).
    assert shape.input_bytes <= placed.cpu_bytes < shape.input_bytes + 1 * MB
    assert "all 9 layers fit" in placed.reason


def test_a_small_gpu_takes_the_layers_that_fit(shape: ModelShape) -> None:
    per_layer = shape.layer_need(0, CTX)
    free = shape.overhead() + shape.output_bytes + 3 * per_layer + per_layer // 2
    placed = plan(shape, CTX, free, None)
    # llama.cpp's n_gpu_layers=4: the output layer and the last three blocks.
    assert placed.gpu_layers == 4 and placed.offloaded == 4 and not placed.full
    assert placed.gpu_bytes == shape.output_bytes + 3 * per_layer <= free - shape.overhead()
    assert placed.gpu_bytes + placed.cpu_bytes == shape.total_need(CTX)
    assert "4 of 9 layers fit" in placed.reason
    # A longer context leaves room for fewer layers.
    assert plan(shape, 4 * CTX, free, None).offloaded < 4
    # Room for the output layer alone: that is the first to go.
    output_only = plan(shape, CTX, shape.overhead() + shape.output_bytes + 1, None)
    assert (output_only.gpu_layers, output_only.gpu_bytes) == (1, shape.output_bytes)


def test_a_gpu_too_small_for_one_layer_gets_none(shape: ModelShape) -> None:
    placed = plan(shape, CTX, shape.overhead(), None)
    assert (placed.gpu_layers, placed.offloaded) == (0, 0)


def test_the_users_choice_wins(shape: ModelShape) -> None:
    assert plan(shape, CTX, 1 * MB, -1).gpu_layers == -1  # all, though it may not fit
    assert plan(shape, CTX, 8 * 2**30, 0).offloaded == 0  # the CPU only
    five = plan(shape, CTX, 8 * 2**30, 5)
    assert (five.gpu_layers, five.offloaded) == (5, 5) and "5 of 9 layers, as set" in five.reason
    assert five.gpu_bytes == shape.output_bytes + 4 * shape.layer_need(0, CTX)
    assert plan(shape, CTX, 8 * 2**30, 99).gpu_layers == -1


def test_what_stays_on_the_cpu_must_fit_the_ram(shape: ModelShape) -> None:
    on_cpu = plan(shape, CTX, None, None)
    check_fits("m", on_cpu, on_cpu.cpu_bytes, None, unified=False)  # just fits: no error
    with pytest.raises(OutOfMemory) as caught:
        check_fits("qwen3-8b", on_cpu, on_cpu.cpu_bytes // 2, None, unified=False)
    message = caught.value.message
    assert message.startswith("not enough memory to load qwen3-8b: ")
    assert "needed in this machine" in message and "free" in message
    # Offloaded, the GPU's share does not count against the RAM ...
    offloaded = plan(shape, CTX, 8 * 2**30, None)
    check_fits("m", offloaded, offloaded.cpu_bytes, 8 * 2**30, unified=False)
    # ... unless it is the same memory (Apple Silicon).
    with pytest.raises(OutOfMemory):
        check_fits("m", offloaded, offloaded.cpu_bytes, 8 * 2**30, unified=True)


def test_a_hostile_header_is_refused_readably(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0))
    with pytest.raises(EngineError, match="malformed GGUF header"):
        read_header(bogus)
    long_key = tmp_path / "long.gguf"
    long_key.write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**50))
    with pytest.raises(EngineError, match="malformed GGUF header"):
        read_header(long_key)
    old = tmp_path / "v1.gguf"
    old.write_bytes(b"GGUF" + struct.pack("<I", 1))
    with pytest.raises(EngineError, match="version 1"):
        read_header(old)
