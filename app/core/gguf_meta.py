"""What a GGUF file is, from the first bytes of its header: a text model, an embedding model, a
reranker or an image projector (llama.cpp's `mmproj`).

The balancer reads these bytes over HTTP before any node has the file, so the parser takes a
prefix and stops where it ends; the model's own keys (`general.*`, `{arch}.*`) come before the
tokenizer's large arrays in every converter's output, so a few kilobytes are enough. The bytes
come from the network: every count is bounded, arrays are skipped, not kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"GGUF"
MAX_KEYS = 1 << 16
MAX_STRING = 1 << 20  # a header string longer than this is not one we need
# GGUF's value types: the struct format of each scalar; strings and arrays have their own.
SCALAR_FORMATS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
STRING_TYPE, ARRAY_TYPE = 8, 9
# llama.cpp's enum llama_pooling_type: what a model's output vector is.
POOLING_RANK = 4  # a score per (query, document) pair: a reranker
POOLING_EMBEDDING = {1, 2, 3}  # mean, cls, last: a sentence embedding
# Encoder-only architectures: they can only embed, whatever their pooling key says.
ENCODERS = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "t5encoder"}
ENCODERS |= {"modern-bert", "neo-bert", "eurobert"}

Scalar = int | float | bool | str


class _Truncated(Exception):
    """The prefix ends inside the header."""


@dataclass(frozen=True)
class GgufMeta:
    """The scalar keys read from a header prefix, and whether the model's own keys were all
    read (the prefix reached the tokenizer's keys or the end of the metadata)."""

    metadata: dict[str, Scalar]
    complete: bool

    @property
    def architecture(self) -> str | None:
        """`general.architecture` (`clip` for an image projector)."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    def capabilities(self) -> tuple[str, ...] | None:
        """What a model with this header does, or None when the header does not say
        (unreadable, or a projector, which is no model on its own)."""
        arch = self.architecture
        if arch is None or arch == "clip" or not self.complete:
            return None
        pooling = self.metadata.get(f"{arch}.pooling_type")
        if pooling == POOLING_RANK:
            return ("Reranking",)
        if pooling in POOLING_EMBEDDING or arch in ENCODERS:
            return ("Embedding",)
        return ("TextGeneration",)

    def is_vision_projector(self) -> bool:
        """An mmproj file with a vision encoder (audio-only projectors are not)."""
        return self.architecture == "clip" and self.metadata.get("clip.has_vision_encoder") is True


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Truncated
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise _Truncated
        self.pos += n

    def unpack(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def count(self, limit: int) -> int:
        n = int(self.unpack("Q"))
        if n > limit:
            raise ValueError(f"a count of {n} in the header")
        return n

    def string(self) -> str:
        return self.take(self.count(MAX_STRING)).decode("utf-8", "replace")

    def value(self, kind: int) -> Scalar | None:
        if kind in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[kind])
        if kind == STRING_TYPE:
            return self.string()
        if kind != ARRAY_TYPE:
            raise ValueError(f"value type {kind}")
        item = int(self.unpack("I"))
        n = self.count(1 << 40)
        if item == STRING_TYPE:
            for _ in range(n):
                self.skip(self.count(MAX_STRING))
        elif item in SCALAR_FORMATS:
            self.skip(struct.calcsize(SCALAR_FORMATS[item]) * n)
        else:
            raise ValueError(f"an array of type {item}")
        return None


def read_prefix(data: bytes) -> GgufMeta | None:
    """The metadata in a GGUF header prefix; None when `data` is not a GGUF header."""
    r = _Reader(data)
    metadata: dict[str, Scalar] = {}
    try:
        if r.take(4) != MAGIC or int(r.unpack("I")) < 2:
            return None
        r.take(8)  # the tensor count
        n_keys = r.count(MAX_KEYS)
        for _ in range(n_keys):
            key = r.string()
            if key.startswith("tokenizer."):
                return GgufMeta(metadata, True)  # the model's own keys are all behind us
            value = r.value(int(r.unpack("I")))
            if value is not None:
                metadata[key] = value
    except _Truncated:
        return GgufMeta(metadata, False) if metadata else None
    except (ValueError, struct.error, UnicodeError):
        return None
    return GgufMeta(metadata, True)
