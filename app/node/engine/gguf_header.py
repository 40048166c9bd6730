"""What a GGUF file's header says about memory: the model's shape and each tensor's size.

Only the header is read (metadata and tensor infos, a few MB at most even with a large
vocabulary, whose string arrays are skipped, not decoded), so planning a load costs
milliseconds however big the weights are. A tensor's size is the distance to the next tensor's
data (or the end of the file), so no table of quantisation block sizes is needed. The header is
hostile input like any file a download brought: every count is bounded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.core.gguf_meta import ARRAY_TYPE, MAGIC, MAX_KEYS, SCALAR_FORMATS, STRING_TYPE
from app.node.engine.types import EngineError

MAX_TENSORS = 1 << 20
MAX_STRING = 1 << 24  # 16 MB: a chat template is large, nothing in a header is larger
KEEP_ARRAY = 4096  # numeric arrays up to this length are kept (per-layer head counts)
Value = int | float | bool | str | list[int | float] | None


@dataclass(frozen=True)
class Header:
    """A GGUF's metadata (scalars, short numeric arrays) and its tensors' byte sizes."""

    metadata: dict[str, Value]
    tensors: dict[str, int]  # name -> bytes in the file
    shapes: dict[str, tuple[int, ...]]  # name -> dimensions (ggml's order: innermost first)
    file_bytes: int


class _Reader:
    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh = fh
        self.name = name

    def take(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise EngineError(f"{self.name} is cut short (its GGUF header ends early)")
        return data

    def unpack(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def count(self, limit: int, what: str) -> int:
        n = int(self.unpack("Q"))
        if n > limit:
            raise EngineError(f"{self.name} has a malformed GGUF header ({n} {what})")
        return n

    def string(self) -> str:
        return self.take(self.count(MAX_STRING, "bytes in a string")).decode("utf-8", "replace")

    def skip_string(self) -> None:
        self.fh.seek(self.count(MAX_STRING, "bytes in a string"), 1)

    def value(self, kind: int) -> Value:
        if kind in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[kind])
        if kind == STRING_TYPE:
            return self.string()
        if kind != ARRAY_TYPE:
            raise EngineError(f"{self.name} has a malformed GGUF header (value type {kind})")
        item = int(self.unpack("I"))
        n = self.count(1 << 32, "array items")
        if item == STRING_TYPE:
            for _ in range(n):
                self.skip_string()
            return None
        if item not in SCALAR_FORMATS:
            raise EngineError(f"{self.name} has a malformed GGUF header (array of {item})")
        fmt = SCALAR_FORMATS[item]
        size = struct.calcsize(fmt) * n
        if n > KEEP_ARRAY:
            self.fh.seek(size, 1)
            return None
        return list(struct.unpack(f"<{n}{fmt}", self.take(size)))


def read_header(path: Path) -> Header:
    """The header of the GGUF at `path`; EngineError when it is not a readable GGUF."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            return _read(_Reader(fh, path.name), size)
    except OSError as exc:
        raise EngineError(f"cannot read the model file {path.name}: {exc.strerror}") from exc


def _read(r: _Reader, file_bytes: int) -> Header:
    magic = r.fh.read(4)
    if magic != MAGIC:
        raise EngineError(f"{r.name} is not a GGUF file (its header is {magic!r})")
    version = int(r.unpack("I"))
    if version < 2:
        raise EngineError(f"{r.name} is GGUF version {version}; llama.cpp reads 2 and later")
    n_tensors = r.count(MAX_TENSORS, "tensors")
    n_keys = r.count(MAX_KEYS, "metadata keys")
    metadata: dict[str, Value] = {}
    for _ in range(n_keys):
        key = r.string()
        metadata[key] = r.value(int(r.unpack("I")))
    offsets: list[tuple[int, str]] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for _ in range(n_tensors):
        name = r.string()
        dims = int(r.unpack("I"))
        if dims > 8:
            raise EngineError(f"{r.name} has a malformed GGUF header ({dims} dimensions)")
        shapes[name] = struct.unpack(f"<{dims}Q", r.take(8 * dims))
        r.take(4)  # the type: the size comes from the offsets
        offsets.append((int(r.unpack("Q")), name))
    alignment = metadata.get("general.alignment")
    align = alignment if isinstance(alignment, int) and alignment > 0 else 32
    start = -(-r.fh.tell() // align) * align
    offsets.sort()
    if offsets and start + offsets[-1][0] > file_bytes:
        raise EngineError(f"{r.name} is cut short (its tensors end past the end of the file)")
    tensors: dict[str, int] = {}
    for i, (offset, name) in enumerate(offsets):
        end = offsets[i + 1][0] if i + 1 < len(offsets) else file_bytes - start
        tensors[name] = max(0, end - offset)
    return Header(metadata, tensors, shapes, file_bytes)
