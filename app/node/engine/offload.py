"""How many of a model's layers go to the GPU: all when the weights and the KV cache fit the
devices' free memory, else as many as fit (llama.cpp offloads the last layers first), the rest
on the CPU; and whether what stays on the CPU fits the RAM.

The sizes come from the GGUF header (`gguf_header`), the free memory from the device probe;
the plan is pure arithmetic, so it is tested with device sizes as inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.gguf_meta import ENCODERS, POOLING_EMBEDDING, POOLING_RANK
from app.node.engine.gguf_header import Header
from app.node.engine.types import OutOfMemory

GiB = 2**30
KV_BYTES = 2  # llama.cpp's KV cache is f16 by default
N_UBATCH = 512
_BLOCK = re.compile(r"blk\.(\d+)\.")


def gb(n: int) -> str:
    """Bytes as a person reads them: "6.1 GB"."""
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class ModelShape:
    """What a model needs in memory, layer by layer."""

    n_layer: int
    layer_bytes: tuple[int, ...]  # weights of each repeating block
    output_bytes: int  # the output layer (offloaded only with every block)
    input_bytes: int  # the token embeddings (always on the CPU)
    kv_bytes_per_token: tuple[int, ...]  # per block: K and V of one token
    n_vocab: int
    file_bytes: int
    trained_context: int | None = None  # the context length it was trained for
    n_head: int = 1
    n_embd: int = 0
    pooled: bool = False  # an embedding or reranking model: one pooled vector per input

    @classmethod
    def of(cls, header: Header) -> ModelShape:
        """The shape a GGUF header describes."""
        meta = header.metadata
        arch = str(meta.get("general.architecture") or "llama")

        def num(key: str, default: int) -> list[int]:
            value = meta.get(f"{arch}.{key}")
            if isinstance(value, list):
                return [int(v) for v in value]
            return [int(value)] if isinstance(value, int | float) and value >= 0 else [default]

        blocks: dict[int, int] = {}
        output = input_ = 0
        for name, size in header.tensors.items():
            if m := _BLOCK.match(name):
                index = int(m.group(1))
                blocks[index] = blocks.get(index, 0) + size
            elif name.startswith("token_embd"):
                input_ += size
            else:
                output += size
        n_layer = max(num("block_count", 0)[0], max(blocks, default=-1) + 1)
        if "output.weight" not in header.tensors:
            output += input_  # tied embeddings: llama.cpp copies them for the output layer
        n_embd = num("embedding_length", 0)[0]
        heads = num("attention.head_count", 1)
        kv_heads = num("attention.head_count_kv", heads[0])
        k_len = num("attention.key_length", n_embd // max(1, heads[0]))[0]
        v_len = num("attention.value_length", k_len)[0]
        per_token = tuple(
            (k_len + v_len) * kv_heads[min(i, len(kv_heads) - 1)] * KV_BYTES for i in range(n_layer)
        )
        embd = header.shapes.get("token_embd.weight", ())
        return cls(
            n_layer=n_layer,
            layer_bytes=tuple(blocks.get(i, 0) for i in range(n_layer)),
            output_bytes=output,
            input_bytes=input_,
            kv_bytes_per_token=per_token,
            n_vocab=embd[1] if len(embd) == 2 else 0,
            file_bytes=header.file_bytes,
            trained_context=num("context_length", 0)[0] or None,
            n_head=max(1, heads[0]),
            n_embd=n_embd,
            pooled=num("pooling_type", 0)[0] in {POOLING_RANK, *POOLING_EMBEDDING}
            or arch in ENCODERS,
        )

    def layer_need(self, i: int, n_ctx: int) -> int:
        """Block `i`'s weights and its KV cache for `n_ctx` tokens."""
        return self.layer_bytes[i] + self.kv_bytes_per_token[i] * n_ctx

    def total_need(self, n_ctx: int) -> int:
        """Everything: weights and the whole KV cache."""
        return self.file_bytes + sum(self.kv_bytes_per_token) * n_ctx

    def overhead(self) -> int:
        """Compute buffers a device needs beside the weights (llama.cpp's scratch for one
        micro-batch: activations and logits), a safe margin rather than an exact figure."""
        return 128 * 2**20 + N_UBATCH * self.n_vocab * 4

    def pooled_scratch(self, n: int) -> int:
        """The compute buffer of a micro-batch of `n` tokens that all attend to each other (a
        pooled model takes a whole input in one): the attention scores of every head (n² each,
        f32, as without flash attention), the activations, and a row of the output layer per
        token (llama-cpp-python also reserves that much for scores)."""
        return 128 * 2**20 + n * n * self.n_head * 4 + n * (self.n_vocab + 16 * self.n_embd) * 4


@dataclass(frozen=True)
class Plan:
    """Where a model's layers go, counted as llama.cpp counts them: every block and the output
    layer, which is the first to go to the GPU (`n_gpu_layers=1` offloads only the output)."""

    gpu_layers: int  # llama.cpp's n_gpu_layers: -1 all, 0 none, k the output and k-1 blocks
    offloaded: int  # layers on the devices (the output layer counts as one)
    n_layers: int  # the blocks and the output layer
    gpu_bytes: int  # weights + KV on the devices
    cpu_bytes: int  # weights + KV in RAM
    reason: str

    @property
    def full(self) -> bool:
        """Every layer is on the devices."""
        return self.offloaded == self.n_layers


def on_gpu(shape: ModelShape, n_ctx: int, k: int) -> int:
    """The bytes `k` layers take on the devices: the output layer first, then the blocks from
    the last one down (as llama.cpp assigns them), each block with its KV cache."""
    if k <= 0:
        return 0
    n = shape.n_layer
    return shape.output_bytes + sum(shape.layer_need(i, n_ctx) for i in range(n - (k - 1), n))


def plan(shape: ModelShape, n_ctx: int, gpu_free: int | None, requested: int | None) -> Plan:
    """Place `shape` with a KV cache of `n_ctx` tokens (all slots together).

    gpu_free: the devices' free memory together (None: no device to offload to).
    requested: None plans as many as fit; -1 all; N as llama.cpp's n_gpu_layers.
    """
    total = shape.n_layer + 1
    if gpu_free is None:
        return _place(shape, n_ctx, 0, "no GPU: every layer runs on the CPU")
    if requested is not None:
        k = total if requested < 0 or requested >= total else requested
        why = "all layers, as set" if k == total else f"{k} of {total} layers, as set"
        return _place(shape, n_ctx, k, why)
    # A pooled model's micro-batch is its whole context: its scratch on the GPU grows with it.
    budget = gpu_free - (shape.pooled_scratch(n_ctx) if shape.pooled else shape.overhead())
    if on_gpu(shape, n_ctx, total) <= budget:
        return _place(shape, n_ctx, total, f"all {total} layers fit the GPU's {gb(gpu_free)} free")
    k = 0
    while k < total and on_gpu(shape, n_ctx, k + 1) <= budget:
        k += 1
    why = f"{k} of {total} layers fit the GPU's {gb(gpu_free)} free; the rest run on the CPU"
    return _place(shape, n_ctx, k, why)


def _place(shape: ModelShape, n_ctx: int, k: int, reason: str) -> Plan:
    total = shape.n_layer + 1
    gpu = on_gpu(shape, n_ctx, k)
    return Plan(
        gpu_layers=-1 if k == total else k,
        offloaded=k,
        n_layers=total,
        gpu_bytes=gpu,
        cpu_bytes=max(0, shape.total_need(n_ctx) - gpu),
        reason=reason,
    )


MIN_CONTEXT = 512
KV_SHARE = 0.5  # of the memory left after the weights: the rest stays for the OS and others


@dataclass(frozen=True)
class Context:
    """How many tokens a model's KV cache holds, and how many one conversation may use."""

    total: int  # cells of the KV cache, all slots together
    per_sequence: int  # the most one conversation may hold (the context clients see)
    unified: bool  # slots share the cells (llama.cpp's unified KV cache)
    reason: str


def memory_room(ram_free: int | None, gpu_free: int | None, unified: bool) -> int | None:
    """What the devices and the RAM have free together (one memory when unified)."""
    return None if ram_free is None else ram_free + (0 if unified else gpu_free or 0)


def size_context(
    shape: ModelShape,
    trained: int | None,
    slots: int,
    asked: int | None,
    memory_free: int | None,
) -> Context:
    """The KV cache a model gets: `asked` tokens per conversation when set (each slot its own
    cells, as before), else the context it was trained for, capped by what the memory left
    after its weights holds. Capped, the slots share those cells, so one long conversation can
    use most of them while short ones run beside it. A pooled model (embeddings, reranking)
    gets `_pooled_context`.

    memory_free: what the devices and RAM have free together (None: unknown, not capped).
    """
    if shape.pooled:
        return _pooled_context(shape, trained, asked, memory_free)
    slots = max(1, slots)
    if asked:
        return Context(asked * slots, asked, False, f"{asked} tokens per conversation, as set")
    wanted = max(MIN_CONTEXT, trained or 4096)
    per_token = max(1, sum(shape.kv_bytes_per_token))
    if memory_free is None:
        room = wanted * slots
    else:
        left = memory_free - shape.file_bytes - shape.overhead()
        room = max(MIN_CONTEXT, int(max(0, left) * KV_SHARE) // per_token)
    if room >= wanted * slots:
        # Every slot gets all it was trained for: each its own KV stream, as llama-server's
        # slots. Sharing buys nothing here, and the follow-up on an 8k conversation measured
        # 1.39x llama-server's time shared against 1.28x per slot (bench/node.py --round long).
        return Context(wanted * slots, wanted, False, f"{wanted} tokens, as trained, per slot")
    total = room // 256 * 256 or MIN_CONTEXT
    per_sequence = min(wanted, total)
    why = (
        f"{per_sequence} tokens, as trained"
        if per_sequence == wanted
        else f"{per_sequence} of the {wanted} it was trained for: the KV cache the memory holds"
    )
    return Context(total, per_sequence, True, f"{why}; {total} shared by {slots} slots")


def _pooled_context(
    shape: ModelShape, trained: int | None, asked: int | None, memory_free: int | None
) -> Context:
    """An embedding or reranking model's context: what it was trained for (no more: a
    position past it has no learned embedding), or `asked` when smaller. llama.cpp pools a
    sequence within one micro-batch (mean, CLS, rank), so the micro-batch holds the whole
    context, and its scratch grows as the square of it: halved until it fits the memory."""
    wanted = min(asked or trained or MIN_CONTEXT, trained or asked or MIN_CONTEXT)
    n = max(1, wanted)
    if memory_free is not None:
        left = int(max(0, memory_free - shape.file_bytes) * KV_SHARE)
        per_token = sum(shape.kv_bytes_per_token)
        while n > MIN_CONTEXT and shape.pooled_scratch(n) + per_token * n > left:
            n = max(MIN_CONTEXT, n // 2)
    why = "as set" if asked and n == asked else "as trained" if n == trained else "memory holds"
    return Context(n, n, False, f"{n} tokens per input in one micro-batch ({why})")


def check_fits(
    name: str, placed: Plan, ram_free: int | None, gpu_free: int | None, unified: bool
) -> None:
    """OutOfMemory with the figures when the placement cannot fit: what stays on the CPU
    must fit the free RAM (with the GPU's share too when they are one memory)."""
    cpu = placed.cpu_bytes + (placed.gpu_bytes if unified else 0)
    if ram_free is not None and cpu > ram_free:
        where = "this machine" if not placed.offloaded else "RAM beside the GPU"
        gpu_note = (
            f"; the GPU has {gb(gpu_free)} free" if gpu_free is not None and not unified else ""
        )
        raise OutOfMemory(
            f"not enough memory to load {name}: {gb(cpu)} needed in {where}, "
            f"{gb(ram_free)} free{gpu_note}"
        )
