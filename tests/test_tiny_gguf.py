"""The tiny GGUF generator: small, deterministic files that real llama.cpp runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import llama_cpp
import pytest
from llama_cpp import Llama

from tests.support.tiny_gguf import (
    DEFAULT_CHAT_TEMPLATE,
    IM_END_TOKEN,
    IM_START_TOKEN,
    REFERENCE_BENCH_CONFIG,
    main,
    write_embedding_gguf,
    write_llama_gguf,
    write_rerank_gguf,
)

HELLO: Any = [{"role": "user", "content": "hello"}]
BLOCK_TENSORS = "attn_norm attn_q attn_k attn_v attn_output ffn_norm ffn_gate ffn_up ffn_down"


def _load(path: Path, **kwargs: Any) -> Llama:
    return Llama(model_path=str(path), **{"n_ctx": 512, "n_threads": 2, "verbose": False, **kwargs})


@pytest.fixture(scope="module")
def chat_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny chat model, written once for the module."""
    return write_llama_gguf(tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf")


@pytest.fixture(scope="module")
def llm(chat_model_path: Path) -> Iterator[Llama]:
    """The default tiny chat model loaded in llama.cpp."""
    model = _load(chat_model_path)
    try:
        yield model
    finally:
        model.close()


def test_default_model_is_small_and_byte_identical_for_a_seed(tmp_path: Path) -> None:
    out = tmp_path / "models"
    first = write_llama_gguf(out / "a.gguf")
    second = write_llama_gguf(out / "b.gguf")
    other_seed = write_llama_gguf(out / "c.gguf", seed=1)
    assert first == out / "a.gguf"
    assert first.stat().st_size < 1_000_000
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["a.gguf", "b.gguf", "c.gguf"]  # no temp files


def test_file_has_llama_layout_and_sentencepiece_vocab(chat_model_path: Path) -> None:
    reader = gguf.GGUFReader(chat_model_path)
    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert field is not None and field.contents() == "llama"
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output_norm.weight", "output.weight"} <= names
    for block in range(2):
        for part in BLOCK_TENSORS.split():
            assert f"blk.{block}.{part}.weight" in names
    tokens_field = reader.get_field(gguf.Keys.Tokenizer.LIST)
    types_field = reader.get_field(gguf.Keys.Tokenizer.TOKEN_TYPE)
    assert tokens_field is not None and types_field is not None
    tokens, types = tokens_field.contents(), types_field.contents()
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert tokens[3:259] == [f"<0x{b:02X}>" for b in range(256)]
    assert set(types[3:259]) == {gguf.TokenType.BYTE}
    assert len(tokens) == len(set(tokens))
    assert "\u2581" in tokens and "\u2581hello" in tokens


def test_llama_cpp_answers_a_chat_completion(llm: Llama) -> None:
    response: Any = llm.create_chat_completion(messages=HELLO, max_tokens=8, temperature=0)
    choice = response["choices"][0]
    assert choice["finish_reason"] in {"stop", "length"}
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert 1 <= response["usage"]["completion_tokens"] <= 8
    assert response["usage"]["prompt_tokens"] > 1


def test_greedy_output_is_deterministic(llm: Llama) -> None:
    runs: list[Any] = [
        llm.create_chat_completion(messages=HELLO, max_tokens=8, temperature=0) for _ in range(2)
    ]
    assert runs[0]["choices"][0]["message"] == runs[1]["choices"][0]["message"]
    assert runs[0]["usage"] == runs[1]["usage"]


def test_sampled_text_is_whole_pieces_within_max_tokens(llm: Llama) -> None:
    response: Any = llm.create_chat_completion(
        messages=HELLO, max_tokens=24, temperature=1.0, seed=7
    )
    content = response["choices"][0]["message"]["content"]
    assert content.isascii() and content.isprintable()
    assert 1 <= response["usage"]["completion_tokens"] <= 24


def test_the_files_chat_template_is_used(llm: Llama) -> None:
    assert llm.metadata["tokenizer.chat_template"] == DEFAULT_CHAT_TEMPLATE
    # Not one of llama-cpp-python's built-in formats: the Jinja template itself renders prompts.
    assert llm.chat_format == "chat_template.default"
    assert llm.detokenize([llm.token_eos()], special=True).decode() == IM_END_TOKEN
    for marker in (IM_START_TOKEN, IM_END_TOKEN):
        assert len(llm.tokenize(marker.encode(), add_bos=False, special=True)) == 1


def test_tokenize_and_detokenize_round_trip(llm: Llama) -> None:
    tokens = llm.tokenize(b"hello world")
    assert len(tokens) > 1
    assert len(llm.tokenize(b"hello world", add_bos=False)) > 1
    assert llm.detokenize(tokens) == b"hello world"
    text = "Hello, how are you?\nÜnïcödé falls back to bytes: 日本 🙂".encode()
    assert llm.detokenize(llm.tokenize(text)) == text


def test_embedding_model_returns_one_vector(tmp_path: Path) -> None:
    path = write_embedding_gguf(tmp_path / "embed.gguf")
    assert path.read_bytes() == write_embedding_gguf(tmp_path / "again.gguf").read_bytes()
    model = _load(path, embedding=True)
    try:
        result: Any = model.create_embedding("hello")
        vector = result["data"][0]["embedding"]
        assert len(vector) == 64
        assert all(isinstance(x, float) for x in vector)
        batch: Any = model.create_embedding(["hello world", "the user"])
        assert [len(item["embedding"]) for item in batch["data"]] == [64, 64]
    finally:
        model.close()


def test_rerank_model_scores_a_pair_with_its_classifier_head(tmp_path: Path) -> None:
    path = write_rerank_gguf(tmp_path / "rerank.gguf")
    assert path.read_bytes() == write_rerank_gguf(tmp_path / "again.gguf").read_bytes()
    reader = gguf.GGUFReader(path)
    arch, pooling = (reader.get_field(k) for k in ("general.architecture", "bert.pooling_type"))
    assert arch is not None and arch.contents() == "bert"
    assert pooling is not None and pooling.contents() == gguf.PoolingType.RANK
    assert {"cls.weight", "cls.output.weight"} <= {t.name for t in reader.tensors}
    model = _load(path, embedding=True, n_ctx=1024, n_batch=1024, n_ubatch=1024)
    try:
        assert model._ctx.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_RANK
        assert llama_cpp.llama_model_n_cls_out(model._model.model) == 1

        def score(document: str) -> float:
            tokens = [1, *model.tokenize(b"hello", add_bos=False), 2, 2]
            tokens += [*model.tokenize(document.encode(), add_bos=False), 2]
            model._batch.batch.n_tokens = 0
            model._batch.add_sequence(tokens, 0, True)
            assert llama_cpp.llama_decode(model._ctx.ctx, model._batch.batch) == 0
            return float(llama_cpp.llama_get_embeddings_seq(model._ctx.ctx, 0)[0])

        scores = [score(d) for d in ("hello world", "thanks", "hello world")]
        assert scores[0] == scores[2] != scores[1]  # a function of the pair, and of the pair only
    finally:
        model.close()


@pytest.mark.parametrize("kwargs", [{"dtype": "f16"}, {"n_head_kv": 2}, {"chat_template": None}])
def test_variants_load_and_generate(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    model = _load(write_llama_gguf(tmp_path / "variant.gguf", **kwargs))
    try:
        response: Any = model.create_chat_completion(messages=HELLO, max_tokens=4, temperature=0)
        assert 1 <= response["usage"]["completion_tokens"] <= 4
        assert ("tokenizer.chat_template" in model.metadata) == ("chat_template" not in kwargs)
    finally:
        model.close()


@pytest.mark.parametrize("kwargs", [{"n_embd": 65}, {"n_head_kv": 3}, {"dtype": "q4_0"}])
def test_bad_arguments_are_rejected(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        write_llama_gguf(tmp_path / "bad" / "x.gguf", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_cli_writes_a_model(tmp_path: Path) -> None:
    out = tmp_path / "cli" / "model.gguf"
    assert main([str(out), "--seed", "3"]) == 0
    assert out.read_bytes() == write_llama_gguf(tmp_path / "api.gguf", seed=3).read_bytes()


def test_reference_bench_config_is_about_25m_parameters() -> None:
    cfg = REFERENCE_BENCH_CONFIG
    n_embd, n_ff = cfg["n_embd"], cfg["n_ff"]
    per_layer = 4 * n_embd * n_embd + 3 * n_embd * n_ff
    assert (cfg["dtype"], n_embd, cfg["n_layer"], n_ff, cfg["n_head"]) == ("f32", 512, 8, 1408, 8)
    assert 24e6 < cfg["n_layer"] * per_layer < 27e6


def test_a_model_that_never_ends_answers_up_to_max_tokens(tmp_path: Path) -> None:
    def finishes(path: Path) -> list[str | None]:
        llm = _load(path, n_ctx=2048, n_threads=1)  # one thread: no barrier spinning on busy cores
        try:
            return [
                llm.create_chat_completion(
                    messages=[{"role": "user", "content": "go on"}],
                    max_tokens=800,
                    temperature=1.0,
                    seed=seed,
                )["choices"][0]["finish_reason"]  # type: ignore[index]
                for seed in range(6)
            ]
        finally:
            llm.close()

    assert "stop" in finishes(write_llama_gguf(tmp_path / "plain.gguf"))  # it does end some
    assert set(finishes(write_llama_gguf(tmp_path / "endless.gguf", ends=False))) == {"length"}


def test_q8_0_matrices_are_quantized_and_norms_stay_f32(tmp_path: Path) -> None:
    """dtype="q8_0" (the realistic-size bench model) writes Q8_0 matrices a GGUF reader
    sees as such; read from the header only: llama.cpp's AMX kernels trap on some VMs."""
    path = write_llama_gguf(tmp_path / "q8.gguf", n_embd=64, n_ff=128, dtype="q8_0")
    tensors = {t.name: t.tensor_type for t in gguf.GGUFReader(path).tensors}
    assert tensors["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert tensors["token_embd.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert tensors["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    f32 = write_llama_gguf(tmp_path / "f32.gguf", n_embd=64, n_ff=128)
    assert path.stat().st_size < f32.stat().st_size / 3
