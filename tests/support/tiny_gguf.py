"""Generate real, tiny GGUF models with random weights for fast llama.cpp tests.

The models written here are genuine ``llama``-architecture GGUF files that llama.cpp (and
therefore ``llama-cpp-python``) loads in milliseconds. Their weights are random, so the text
they produce is nonsense, but every code path is real: tokenization with a SentencePiece-style
vocabulary (with byte fallback), a Jinja chat template, sampling, stop tokens and embeddings.

Weights are ``numpy.random.default_rng(seed)`` normals (std 0.02), norms are ones, and one
hidden dimension of the chat model is a constant "bias channel" that keeps raw byte tokens
and ``<s>``/``<unk>``/``<|im_start|>`` out of generated text (see ``_add_text_bias``).
Nothing is downloaded; the same arguments (including ``seed``) always produce a
byte-identical file.

Usage from the command line::

    python -m tests.support.tiny_gguf OUT.gguf            # default tiny chat model (~0.7 MB)
    python -m tests.support.tiny_gguf OUT.gguf --bench    # ~26M-parameter benchmark model
    python -m tests.support.tiny_gguf OUT.gguf --embedding
    python -m tests.support.tiny_gguf OUT.gguf --rerank
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import gguf
import numpy as np
import numpy.typing as npt

__all__ = [
    "BOS_TOKEN",
    "DEFAULT_CHAT_TEMPLATE",
    "EOS_TOKEN",
    "IM_END_TOKEN",
    "IM_START_TOKEN",
    "Q8_BENCH_CONFIG",
    "REASONING_CHAT_TEMPLATE",
    "REFERENCE_BENCH_CONFIG",
    "THINK_END_TOKEN",
    "THINK_TOKEN",
    "UNK_TOKEN",
    "build_vocab",
    "main",
    "write_embedding_gguf",
    "write_llama_gguf",
    "write_mmproj_gguf",
    "write_rerank_gguf",
]

ARCH: Final = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA]  # "llama"

UNK_TOKEN: Final = "<unk>"
BOS_TOKEN: Final = "<s>"
EOS_TOKEN: Final = "</s>"
IM_START_TOKEN: Final = "<|im_start|>"
IM_END_TOKEN: Final = "<|im_end|>"
THINK_TOKEN: Final = "<think>"
THINK_END_TOKEN: Final = "</think>"

#: ChatML template. It is deliberately *not* byte-identical to llama-cpp-python's built-in
#: ``CHATML_CHAT_TEMPLATE``, so llama-cpp-python does not swap in its hard-coded "chatml"
#: formatter and instead renders this template with ``Jinja2ChatFormatter`` (chat_format
#: ``"chat_template.default"``). It tolerates ``None`` content and OpenAI content-part lists.
DEFAULT_CHAT_TEMPLATE: Final = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: A reasoning model's ChatML template, as Qwen3's and QwQ's: the generation prompt opens
#: ``<think>\n`` (the model's first words are its reasoning) unless ``enable_thinking`` is
#: false, when it renders an empty, closed block instead; earlier assistant turns keep only
#: their answer (what follows ``</think>``).
REASONING_CHAT_TEMPLATE: Final = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set content = message['content'] if message['content'] is string else '' %}"
    "{% if message['role'] == 'assistant' and '</think>' in content %}"
    "{% set content = content.split('</think>')[-1].lstrip('\n') %}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + content + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\n\n</think>\n\n' }}"
    "{% else %}{{ '<think>\n' }}{% endif %}"
    "{% endif %}"
)

#: Keyword arguments for :func:`write_llama_gguf` that produce the reference benchmark model:
#: about 26M parameters in f32 (roughly 100 MB on disk).
REFERENCE_BENCH_CONFIG: Final[dict[str, Any]] = {
    "n_embd": 512,
    "n_layer": 8,
    "n_head": 8,
    "n_ff": 1408,
    "dtype": "f32",
    "name": "tiny-llama-bench",
}

#: Keyword arguments for :func:`write_llama_gguf` that produce the realistic-size benchmark
#: model: about 0.52B parameters in Q8_0 (about 0.55 GB on disk), memory-bound like a real
#: small model (the vocabulary is tiny, so the parameters are in the blocks).
Q8_BENCH_CONFIG: Final[dict[str, Any]] = {
    "n_embd": 1024,
    "n_layer": 24,
    "n_head": 16,
    "n_ff": 5632,
    "dtype": "q8_0",
    "name": "tiny-llama-bench-q8",
}

_SPACE: Final = "\u2581"  # SentencePiece's "▁" word-boundary marker

_WORDS: Final = (
    "a about after all also an and any are as ask assistant at be because been but by can "
    "could day do does for from get give good have he hello help her here hi his how I if in "
    "into is it its just know like make me model more my new no not now of on one or other "
    "our out over please question say see she so some system take tell than thank thanks that "
    "the their them then there these they think this time to two up us use user very want was "
    "way we well what when which who will with word world would yes you your"
).split()

_SUBWORDS: Final = (
    "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le "
    "ve co me de hi ri ro ic ne ea ra ce li ch ll be ma si om ur ing ion ent and the er. ly"
).split()

_REASONING: Final = {
    "think": ((THINK_TOKEN, THINK_END_TOKEN), gguf.TokenType.USER_DEFINED),
    "magistral": (("[THINK]", "[/THINK]"), gguf.TokenType.CONTROL),
}

_WEIGHT_STD: Final = 0.02
_RMS_EPS: Final = 1e-5
_ROPE_FREQ_BASE: Final = 10000.0


def build_vocab(
    reasoning: str | None = None,
) -> tuple[list[str], list[float], list[gguf.TokenType]]:
    """Return ``(tokens, scores, token_types)`` for the tiny SentencePiece-style vocabulary.

    Layout: ``<unk>`` (0, UNKNOWN), ``<s>`` (1, CONTROL), ``</s>`` (2, CONTROL), the 256 byte
    tokens ``<0x00>``..``<0xFF>`` (3..258, BYTE), ``<|im_start|>`` (259, CONTROL),
    ``<|im_end|>`` (260, CONTROL), then NORMAL pieces: ``▁``, printable ASCII characters,
    common sub-words, and common English words with every ``▁``-prefixed prefix of each word so
    that SentencePiece's bigram merges can always build the whole word. Normal pieces get
    strictly decreasing scores (earlier = preferred), like a real SentencePiece model.
    A reasoning model's markers follow, typed as real GGUFs have them: with ``reasoning="think"``
    ``<think>`` and ``</think>`` as USER_DEFINED tokens (Qwen3, the DeepSeek-R1 distills: their
    text shows in output), with ``reasoning="magistral"`` ``[THINK]`` and ``[/THINK]`` as
    CONTROL tokens (Mistral's tokenizer: llama.cpp leaves their text out unless asked).
    """
    tokens: list[str] = [UNK_TOKEN, BOS_TOKEN, EOS_TOKEN]
    types: list[gguf.TokenType] = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
    ]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += [IM_START_TOKEN, IM_END_TOKEN]
    types += [gguf.TokenType.CONTROL] * 2
    scores: list[float] = [0.0] * len(tokens)

    normal: dict[str, None] = {_SPACE: None}
    for code in range(0x21, 0x7F):  # printable ASCII except space (space is "▁")
        normal[chr(code)] = None
    for piece in _SUBWORDS:
        normal[piece] = None
    for word in _WORDS:
        marked = _SPACE + word
        for end in range(2, len(marked) + 1):
            normal[marked[:end]] = None
        normal[word] = None  # word at the start of a line / after punctuation
    for rank, piece in enumerate(normal):
        tokens.append(piece)
        scores.append(-float(rank))
        types.append(gguf.TokenType.NORMAL)
    if reasoning is not None:
        if reasoning not in _REASONING:
            raise ValueError(f"reasoning must be one of {sorted(_REASONING)}, not {reasoning!r}")
        markers, kind = _REASONING[reasoning]
        tokens += list(markers)
        scores += [0.0, 0.0]
        types += [kind] * 2
    return tokens, scores, types


def _tensor_name(kind: gguf.MODEL_TENSOR, block: int | None = None) -> str:
    name = gguf.TENSOR_NAMES[kind]
    if block is not None:
        name = name.format(bid=block)
    return f"{name}.weight"


def _add_text_bias(
    token_embd: npt.NDArray[Any],
    output: npt.NDArray[Any],
    tokens: Sequence[str],
    types: Sequence[gguf.TokenType],
    ends: bool = True,
) -> None:
    """Make a random chat model emit text pieces (and end-of-generation), never bytes.

    Hidden dimension 0 becomes a constant "bias channel": every token embedding has 1.0 there
    (the random weights are ~0.02, so it survives the blocks and dominates the final RMS norm),
    and ``output.weight`` reads it with -1.0 for ``<unk>``, ``<s>``, ``<|im_start|>`` and the
    256 byte tokens, 0.0 for everything else. Those tokens' logits drop by roughly
    ``sqrt(n_embd)``, so generated text is whole ASCII pieces: no invalid UTF-8 and no
    llama-cpp-python "multibyte fix" that lets ``completion_tokens`` exceed ``max_tokens``.
    With ``ends=False`` the end-of-generation tokens get -3.0 (a drop of about 24 in their
    logits): the model practically never ends an answer by itself.
    """
    token_embd[:, 0] = 1.0
    output[:, 0] = 0.0
    for token_id, (token, token_type) in enumerate(zip(tokens, types, strict=True)):
        if token_type == gguf.TokenType.BYTE or token in (UNK_TOKEN, BOS_TOKEN, IM_START_TOKEN):
            output[token_id, 0] = -1.0
        elif not ends and token in (EOS_TOKEN, IM_END_TOKEN):
            output[token_id, 0] = -3.0


def _write_model(
    path: Path,
    *,
    n_embd: int,
    n_layer: int,
    n_head: int,
    n_head_kv: int | None,
    n_ff: int,
    context_length: int,
    seed: int,
    dtype: str,
    chat_template: str | None,
    name: str,
    pooling: gguf.PoolingType | None,
    tie_embeddings: bool,
    ends: bool = True,
    reasoning: str | None = None,
) -> Path:
    if dtype not in ("f32", "f16", "q8_0"):
        raise ValueError(f"dtype must be 'f32', 'f16' or 'q8_0', not {dtype!r}")
    if min(n_embd, n_layer, n_head, n_ff, context_length) <= 0:
        raise ValueError("model dimensions must be positive")
    kv_heads = n_head if n_head_kv is None else n_head_kv
    if n_embd % n_head or kv_heads <= 0 or n_head % kv_heads:
        raise ValueError("n_embd must be divisible by n_head, and n_head by n_head_kv")
    head_dim = n_embd // n_head
    n_embd_kv = head_dim * kv_heads

    tokens, scores, types = build_vocab(reasoning)
    n_vocab = len(tokens)
    # q8_0 matrices are made in f32 and quantized as they are added (see `add`).
    matrix_dtype = np.float16 if dtype == "f16" else np.float32
    rng = np.random.default_rng(seed)

    def matrix(rows: int, cols: int) -> npt.NDArray[Any]:
        # numpy shape is (out_features, in_features); ggml's ne is the reverse.
        values = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(_WEIGHT_STD)
        return values.astype(matrix_dtype)

    def norm() -> npt.NDArray[np.float32]:
        return np.ones(n_embd, dtype=np.float32)  # 1-D tensors stay f32 (llama.cpp convention)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp_path, ARCH)

    def add(tensor_name: str, values: npt.NDArray[Any]) -> None:
        if dtype == "q8_0" and values.ndim == 2:
            q8 = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(tensor_name, gguf.quants.quantize(values, q8), raw_dtype=q8)
        else:
            writer.add_tensor(tensor_name, values)

    file_types = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }
    try:
        writer.add_name(name)
        writer.add_file_type(file_types[dtype])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_vocab_size(n_vocab)
        writer.add_context_length(context_length)
        writer.add_embedding_length(n_embd)
        writer.add_block_count(n_layer)
        writer.add_feed_forward_length(n_ff)
        writer.add_head_count(n_head)
        writer.add_head_count_kv(kv_heads)
        writer.add_layer_norm_rms_eps(_RMS_EPS)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(_ROPE_FREQ_BASE)
        if pooling is not None:
            writer.add_pooling_type(pooling)

        writer.add_tokenizer_model("llama")  # SentencePiece (SPM) tokenizer with byte fallback
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(tokens.index(UNK_TOKEN))
        writer.add_bos_token_id(tokens.index(BOS_TOKEN))
        writer.add_eos_token_id(tokens.index(IM_END_TOKEN))
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(True)
        if chat_template is not None:
            writer.add_chat_template(chat_template)

        t = gguf.MODEL_TENSOR
        token_embd = matrix(n_vocab, n_embd)
        output = None if tie_embeddings else matrix(n_vocab, n_embd)
        if output is not None:
            _add_text_bias(token_embd, output, tokens, types, ends)
        add(_tensor_name(t.TOKEN_EMBD), token_embd)
        add(_tensor_name(t.OUTPUT_NORM), norm())
        if output is not None:
            add(_tensor_name(t.OUTPUT), output)
        for i in range(n_layer):
            add(_tensor_name(t.ATTN_NORM, i), norm())
            add(_tensor_name(t.ATTN_Q, i), matrix(n_embd, n_embd))
            add(_tensor_name(t.ATTN_K, i), matrix(n_embd_kv, n_embd))
            add(_tensor_name(t.ATTN_V, i), matrix(n_embd_kv, n_embd))
            add(_tensor_name(t.ATTN_OUT, i), matrix(n_embd, n_embd))
            add(_tensor_name(t.FFN_NORM, i), norm())
            add(_tensor_name(t.FFN_GATE, i), matrix(n_ff, n_embd))
            add(_tensor_name(t.FFN_UP, i), matrix(n_ff, n_embd))
            add(_tensor_name(t.FFN_DOWN, i), matrix(n_embd, n_ff))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp_path, path)  # atomic: concurrent writers never expose a half-written file
    return path


def write_llama_gguf(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int | None = None,
    n_ff: int = 128,
    context_length: int = 2048,
    seed: int = 0,
    dtype: str = "f32",
    chat_template: str | None = DEFAULT_CHAT_TEMPLATE,
    name: str = "tiny-llama",
    ends: bool = True,
    reasoning: str | None = None,
) -> Path:
    """Write a tiny random-weight ``llama`` chat model to ``path`` and return ``path``.

    Args:
        path: Destination file (parent directories are created). Written atomically.
        n_embd: Hidden size; must be divisible by ``n_head``.
        n_layer: Number of transformer blocks.
        n_head: Attention heads.
        n_head_kv: Key/value heads for grouped-query attention (default: ``n_head``).
        n_ff: Feed-forward (SwiGLU) hidden size.
        context_length: Training context length stored in the metadata.
        seed: Seed for ``numpy.random.default_rng``; same arguments give a byte-identical file.
        dtype: ``"f32"``, ``"f16"`` or ``"q8_0"`` (quantized with ``gguf.quants``) for the
            2-D weight matrices (norms are always f32).
        chat_template: Jinja chat template stored as ``tokenizer.chat_template``
            (``None`` stores no template).
        name: ``general.name`` metadata.
        ends: False for a model that practically never says its end token (answers run
            to ``max_tokens``), for tests that stop or break a long answer.
        reasoning: ``"think"`` or ``"magistral"`` for a reasoning model's markers in the
            vocabulary (see :func:`build_vocab`); pair ``"think"`` with
            ``REASONING_CHAT_TEMPLATE``.

    The vocabulary is described in :func:`build_vocab`; BOS is ``<s>`` and EOS is
    ``<|im_end|>`` (llama.cpp also treats ``</s>`` as end-of-generation). Generated text is
    made of whole vocabulary pieces (printable ASCII), never raw byte tokens.
    """
    return _write_model(
        path,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_ff=n_ff,
        context_length=context_length,
        seed=seed,
        dtype=dtype,
        chat_template=chat_template,
        name=name,
        pooling=None,
        tie_embeddings=False,
        ends=ends,
        reasoning=reasoning,
    )


def write_embedding_gguf(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    context_length: int = 2048,
    seed: int = 0,
    dtype: str = "f32",
    pooling: str = "mean",
    name: str = "tiny-embed",
) -> Path:
    """Write a tiny random-weight embedding model to ``path`` and return ``path``.

    It is the ``llama`` architecture with ``llama.pooling_type`` set, no ``output.weight``
    (llama.cpp ties it to ``token_embd.weight``) and no chat template. Load it with
    ``Llama(model_path=..., embedding=True)``; ``create_embedding(text)`` then returns one
    pooled vector of length ``n_embd`` per input.

    Args:
        path: Destination file (parent directories are created). Written atomically.
        n_embd: Embedding / hidden size; must be divisible by ``n_head``.
        n_layer: Number of transformer blocks.
        n_head: Attention heads.
        n_ff: Feed-forward hidden size.
        context_length: Context length stored in the metadata.
        seed: Seed for the random weights; same arguments give a byte-identical file.
        dtype: ``"f32"`` or ``"f16"``.
        pooling: ``"mean"``, ``"cls"`` or ``"last"``.
        name: ``general.name`` metadata.
    """
    pooling_types = {
        "mean": gguf.PoolingType.MEAN,
        "cls": gguf.PoolingType.CLS,
        "last": gguf.PoolingType.LAST,
    }
    if pooling not in pooling_types:
        raise ValueError(f"pooling must be one of {sorted(pooling_types)}, not {pooling!r}")
    return _write_model(
        path,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=None,
        n_ff=n_ff,
        context_length=context_length,
        seed=seed,
        dtype=dtype,
        chat_template=None,
        name=name,
        pooling=pooling_types[pooling],
        tie_embeddings=True,
    )


def write_rerank_gguf(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    context_length: int = 1024,
    seed: int = 0,
    dtype: str = "f32",
    name: str = "tiny-rerank",
) -> Path:
    """Write a tiny random-weight reranking model (a cross-encoder) and return ``path``.

    It is llama.cpp's ``bert`` architecture, as the rerankers people run are (bge-reranker,
    jina-reranker): non-causal attention, ``bert.pooling_type`` 4 (``LLAMA_POOLING_TYPE_RANK``)
    and the classification head llama.cpp builds for it (``cls`` with its bias, then a
    ``cls.output`` row: one score per sequence, read from its first token). The vocabulary is
    :func:`build_vocab`'s (SentencePiece); as XLM-RoBERTa's, a pair is tokenized
    ``<s> query </s> </s> document </s>``: BOS, EOS and SEP (``</s>``) are added.
    Load it with ``Llama(model_path=..., embedding=True)``; ``llama_get_embeddings_seq``
    then holds the pair's score.

    Args:
        path: Destination file (parent directories are created). Written atomically.
        n_embd: Hidden size; must be divisible by ``n_head``.
        n_layer: Number of encoder blocks.
        n_head: Attention heads.
        n_ff: Feed-forward (GELU) hidden size.
        context_length: Positions the model has (its learned position embeddings).
        seed: Seed for the random weights; same arguments give a byte-identical file.
        dtype: ``"f32"`` or ``"f16"`` for the 2-D weight matrices.
        name: ``general.name`` metadata.
    """
    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype must be 'f32' or 'f16', not {dtype!r}")
    if min(n_embd, n_layer, n_head, n_ff, context_length) <= 0 or n_embd % n_head:
        raise ValueError("model dimensions must be positive, n_embd divisible by n_head")
    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT]
    tokens, scores, types = build_vocab()
    rng = np.random.default_rng(seed)
    matrix_dtype = np.float16 if dtype == "f16" else np.float32

    def matrix(rows: int, cols: int) -> npt.NDArray[Any]:
        values = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(_WEIGHT_STD)
        return values.astype(matrix_dtype)

    def vector(n: int, value: float) -> npt.NDArray[np.float32]:
        return np.full(n, value, dtype=np.float32)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp_path, arch)
    t = gguf.MODEL_TENSOR
    try:
        writer.add_name(name)
        writer.add_file_type(
            gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32
        )
        writer.add_vocab_size(len(tokens))
        writer.add_context_length(context_length)
        writer.add_embedding_length(n_embd)
        writer.add_block_count(n_layer)
        writer.add_feed_forward_length(n_ff)
        writer.add_head_count(n_head)
        writer.add_layer_norm_eps(1e-12)
        writer.add_causal_attention(False)
        writer.add_pooling_type(gguf.PoolingType.RANK)
        writer.add_classifier_output_labels(["score"])

        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_token_type_count(2)
        writer.add_unk_token_id(tokens.index(UNK_TOKEN))
        writer.add_bos_token_id(tokens.index(BOS_TOKEN))
        writer.add_eos_token_id(tokens.index(EOS_TOKEN))
        writer.add_sep_token_id(tokens.index(EOS_TOKEN))
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(True)
        writer.add_add_sep_token(True)
        writer.add_add_space_prefix(True)

        writer.add_tensor(_tensor_name(t.TOKEN_EMBD), matrix(len(tokens), n_embd))
        writer.add_tensor(_tensor_name(t.TOKEN_TYPES), matrix(2, n_embd))
        writer.add_tensor(_tensor_name(t.POS_EMBD), matrix(context_length, n_embd))
        writer.add_tensor(_tensor_name(t.TOKEN_EMBD_NORM), vector(n_embd, 1.0))
        writer.add_tensor(f"{gguf.TENSOR_NAMES[t.TOKEN_EMBD_NORM]}.bias", vector(n_embd, 0.0))
        for i in range(n_layer):
            for kind, rows, cols in (
                (t.ATTN_Q, n_embd, n_embd),
                (t.ATTN_K, n_embd, n_embd),
                (t.ATTN_V, n_embd, n_embd),
                (t.ATTN_OUT, n_embd, n_embd),
                (t.FFN_UP, n_ff, n_embd),
                (t.FFN_DOWN, n_embd, n_ff),
            ):
                writer.add_tensor(_tensor_name(kind, i), matrix(rows, cols))
                writer.add_tensor(_tensor_name(kind, i)[: -len("weight")] + "bias", vector(rows, 0))
            for kind in (t.ATTN_OUT_NORM, t.LAYER_OUT_NORM):
                writer.add_tensor(_tensor_name(kind, i), vector(n_embd, 1.0))
                writer.add_tensor(
                    _tensor_name(kind, i)[: -len("weight")] + "bias", vector(n_embd, 0)
                )
        # The head: tanh(cls · x + b), then one row to a score. Its weights are larger than
        # the blocks' so that scores differ visibly between documents.
        cls = (rng.standard_normal((n_embd, n_embd), dtype=np.float32) * 0.2).astype(np.float32)
        writer.add_tensor(_tensor_name(t.CLS), cls)
        writer.add_tensor(f"{gguf.TENSOR_NAMES[t.CLS]}.bias", vector(n_embd, 0.0))
        out = rng.standard_normal((1, n_embd), dtype=np.float32).astype(np.float32)
        writer.add_tensor(_tensor_name(t.CLS_OUT), out)
        writer.add_tensor(f"{gguf.TENSOR_NAMES[t.CLS_OUT]}.bias", vector(1, 0.0))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp_path, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: write one model and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.tiny_gguf",
        description="Write a tiny random-weight GGUF model for tests.",
    )
    parser.add_argument("out", type=Path, help="output .gguf path")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--bench", action="store_true", help="write the ~26M-parameter benchmark model"
    )
    kind.add_argument("--embedding", action="store_true", help="write an embedding model")
    kind.add_argument("--rerank", action="store_true", help="write a reranking model")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--dtype", choices=("f32", "f16"), default=None, help="weight type")
    args = parser.parse_args(argv)

    options: dict[str, Any] = {"seed": args.seed}
    if args.dtype is not None:
        options["dtype"] = args.dtype
    if args.embedding:
        write_embedding_gguf(args.out, **options)
    elif args.rerank:
        write_rerank_gguf(args.out, **options)
    elif args.bench:
        write_llama_gguf(args.out, **{**REFERENCE_BENCH_CONFIG, **options})
    else:
        write_llama_gguf(args.out, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def write_mmproj_gguf(
    path: Path,
    *,
    text_n_embd: int = 64,
    n_embd: int = 32,
    n_layer: int = 2,
    n_head: int = 2,
    n_ff: int = 64,
    image_size: int = 28,
    patch_size: int = 14,
    seed: int = 0,
    name: str = "tiny-mmproj",
) -> Path:
    """Write a tiny random-weight LLaVA-style image projector (``mmproj``) and return ``path``.

    llama.cpp's clip loader (tools/mtmd/clip.cpp) reads it as a CLIP vision encoder with the
    ``mlp`` projector: patch and position embeddings, ``n_layer`` pre-norm ViT blocks (the
    last one is skipped, as LLaVA takes the second-to-last layer's features) and a two-layer
    MLP (``mm.0``, ``mm.2``) whose output size ``text_n_embd`` must equal the text model's
    ``n_embd``. An image becomes ``(image_size / patch_size) ** 2`` embeddings (4 by default).

    Args:
        path: Destination file (parent directories are created). Written atomically.
        text_n_embd: The text model's hidden size (the projector's output size).
        n_embd: The vision encoder's hidden size; must be divisible by ``n_head``.
        n_layer: Vision transformer blocks (at least 2: the last one is not used).
        n_head: Attention heads of the vision encoder.
        n_ff: The vision encoder's feed-forward size.
        image_size: The square size images are resized to.
        patch_size: The side of one patch; ``image_size`` must be a multiple of it.
        seed: Seed for the random weights; same arguments give a byte-identical file.
        name: ``general.name`` metadata.
    """
    if n_embd % n_head or image_size % patch_size or n_layer < 2:
        raise ValueError("n_embd % n_head, image_size % patch_size must be 0; n_layer >= 2")
    rng = np.random.default_rng(seed)
    n_patches = (image_size // patch_size) ** 2

    def weights(*shape: int) -> npt.NDArray[np.float32]:
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(_WEIGHT_STD)
        return values.astype(np.float32)

    def ones(n: int) -> npt.NDArray[np.float32]:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> npt.NDArray[np.float32]:
        return np.zeros(n, dtype=np.float32)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp_path, "clip")
    try:
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_bool("clip.has_vision_encoder", True)
        writer.add_string("clip.projector_type", "mlp")
        writer.add_bool("clip.use_gelu", True)
        writer.add_uint32("clip.vision.image_size", image_size)
        writer.add_uint32("clip.vision.patch_size", patch_size)
        writer.add_uint32("clip.vision.embedding_length", n_embd)
        writer.add_uint32("clip.vision.feed_forward_length", n_ff)
        writer.add_uint32("clip.vision.projection_dim", text_n_embd)
        writer.add_uint32("clip.vision.block_count", n_layer)
        writer.add_uint32("clip.vision.attention.head_count", n_head)
        writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
        writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
        writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

        # numpy shapes are (out, in); ggml's ne is the reverse. The patch embedding is a
        # convolution kernel: ne = (patch, patch, 3 channels, n_embd).
        writer.add_tensor("v.patch_embd.weight", weights(n_embd, 3, patch_size, patch_size))
        writer.add_tensor("v.patch_embd.bias", zeros(n_embd))
        writer.add_tensor("v.position_embd.weight", weights(n_patches, n_embd))
        writer.add_tensor("v.pre_ln.weight", ones(n_embd))
        writer.add_tensor("v.pre_ln.bias", zeros(n_embd))
        for i in range(n_layer):
            for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
                writer.add_tensor(f"v.blk.{i}.{part}.weight", weights(n_embd, n_embd))
                writer.add_tensor(f"v.blk.{i}.{part}.bias", zeros(n_embd))
            for part in ("ln1", "ln2"):
                writer.add_tensor(f"v.blk.{i}.{part}.weight", ones(n_embd))
                writer.add_tensor(f"v.blk.{i}.{part}.bias", zeros(n_embd))
            writer.add_tensor(f"v.blk.{i}.ffn_up.weight", weights(n_ff, n_embd))
            writer.add_tensor(f"v.blk.{i}.ffn_up.bias", zeros(n_ff))
            writer.add_tensor(f"v.blk.{i}.ffn_down.weight", weights(n_embd, n_ff))
            writer.add_tensor(f"v.blk.{i}.ffn_down.bias", zeros(n_embd))
        writer.add_tensor("mm.0.weight", weights(text_n_embd, n_embd))
        writer.add_tensor("mm.0.bias", zeros(text_n_embd))
        writer.add_tensor("mm.2.weight", weights(text_n_embd, text_n_embd))
        writer.add_tensor("mm.2.bias", zeros(text_n_embd))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp_path, path)
    return path
