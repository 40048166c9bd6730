"""llama.cpp itself: open a GGUF, render a chat prompt, create a batched context, and route
llama.cpp's own log into Python logging (keeping its recent errors to explain failures)."""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

from app.core.errors import BadRequest
from app.core.system import memory_info
from app.node.devices import list_devices
from app.node.engine import amx, offload
from app.node.engine.gguf_header import read_header
from app.node.engine.types import EngineError, OutOfMemory

log = logging.getLogger(__name__)
llama_log = logging.getLogger("llama.cpp")
# llama.cpp's words when an allocation fails (CUDA, Metal, Vulkan, the CPU, an RPC server).
_OOM = re.compile(r"out of memory|failed to allocate|unable to allocate|alloc.*failed", re.I)
_LEVELS = {  # ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5
    0: logging.DEBUG,
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.ERROR,
}
_recent: deque[str] = deque(maxlen=20)
_lock = threading.Lock()
_last_level = logging.INFO
# The RAM a load of a model file may take, when its node caps its models' memory
# (LLMLB_MODEL_MEMORY less what its other loaded models hold); set by the node's pool.
_budgets: dict[Path, int] = {}


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _log_callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    global _last_level
    py_level = _LEVELS.get(level, _last_level)  # 5 = "continue the previous line"
    _last_level = py_level
    line = text.decode("utf-8", "replace").rstrip()
    if not line:
        return
    if py_level >= logging.WARNING:
        with _lock:
            _recent.append(line)
    if llama_log.isEnabledFor(py_level):
        llama_log.log(py_level, "%s", line)


def install_log() -> None:
    """Make llama.cpp log through us (idempotent)."""
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def recent_problems() -> list[str]:
    """llama.cpp's latest warnings and errors, oldest first, and forget them."""
    with _lock:
        lines = list(_recent)
        _recent.clear()
    return lines


def check_gguf(path: Path) -> None:
    """Raise EngineError with a readable reason if `path` cannot be a loadable GGUF (its
    header is read; whether it fits in memory is asked at each load, never remembered)."""
    read_header(path)


def set_memory_budget(path: Path, budget: int | None) -> None:
    """Cap the RAM the next load of `path` may take (None: the machine's free memory only)."""
    if budget is None:
        _budgets.pop(path, None)
    else:
        _budgets[path] = max(0, budget)


def place(
    name: str,
    path: Path,
    *,
    slots: int,
    asked_ctx: int | None,
    requested: int | None,
    pooled: bool = False,
) -> tuple[offload.Context, offload.Plan]:
    """How big `name`'s KV cache is (`asked_ctx` tokens per conversation, else what it was
    trained for within the memory left after its weights) and where its layers go, given the
    devices' free memory now; OutOfMemory when what stays on the CPU does not fit the RAM.
    `pooled`: loaded for embeddings or reranking, whatever its header says."""
    shape = offload.ModelShape.of(read_header(path))
    if pooled:
        shape = dataclasses.replace(shape, pooled=True)
    gpus = list_devices() if llama_cpp.llama_supports_gpu_offload() else []
    gpu_free = sum(d.free_bytes for d in gpus) if gpus else None
    unified = any(d.unified for d in gpus)
    memory = memory_info()
    ram_free = memory.available_bytes if memory else None
    budget = _budgets.get(path)
    if budget is not None:  # the node's own cap on its models' memory
        ram_free = budget if ram_free is None else min(ram_free, budget)
    room = offload.memory_room(ram_free, gpu_free, unified)
    context = offload.size_context(shape, shape.trained_context, slots, asked_ctx, room)
    placed = offload.plan(shape, context.total, gpu_free, requested)
    offload.check_fits(name, placed, ram_free, gpu_free, unified)
    return context, placed


@functools.lru_cache(maxsize=64)
def _shape(path: Path, mtime_ns: int, size: int) -> offload.ModelShape:
    return offload.ModelShape.of(read_header(path))


def planned_context(
    path: Path, slots: int, asked_ctx: int | None, gpu_free: int | None, unified: bool
) -> int | None:
    """The tokens one conversation may hold if the model loaded now (what a node reports for
    a model not loaded yet); None when its file cannot be read."""
    try:
        stat = path.stat()
        shape = _shape(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, EngineError):
        return None
    memory = memory_info()
    ram_free = memory.available_bytes if memory else None
    room = offload.memory_room(ram_free, gpu_free, unified)
    return offload.size_context(shape, shape.trained_context, slots, asked_ctx, room).per_sequence


def memory_error(name: str, placed: offload.Plan, what: str) -> EngineError:
    """llama.cpp's failure to load or make a context, as a reader understands it: the GPU
    (or RAM) ran out of memory, with the figures, or llama.cpp's own reason."""
    problems = [p for p in recent_problems() if p]
    # llama.cpp says why first ("error loading model: unknown model architecture: 'x'"),
    # then that it failed: the why is the reason.
    specific = [p for p in problems if "error" in p.lower()] or problems
    reason = specific[0] if specific else what
    if not any(_OOM.search(p) for p in problems):
        return EngineError(f"llama.cpp could not {what} {name}: {reason}")
    if placed.offloaded:
        gpus = list_devices()
        free = sum(d.free_bytes for d in gpus)
        return OutOfMemory(
            f"the GPU ran out of memory loading {name}: {offload.gb(placed.gpu_bytes)} "
            f"needed, {offload.gb(free)} free"
        )
    memory = memory_info()
    free = memory.available_bytes if memory and memory.available_bytes else 0
    return OutOfMemory(
        f"not enough memory to load {name}: {offload.gb(placed.cpu_bytes)} needed, "
        f"{offload.gb(free)} free"
    )


def decode_error(name: str, rc: int, placed: offload.Plan | None) -> EngineError:
    """A failed llama_decode as a reader understands it. Running out of memory mid-answer (a
    compute buffer on a full GPU) is OutOfMemory: the sequences running are told, and the
    next request simply runs (nothing is marked broken)."""
    problems = [p for p in recent_problems() if p]
    if any(_OOM.search(p) for p in problems):
        where = "the GPU" if placed is not None and placed.offloaded else "this machine"
        return OutOfMemory(
            f"{where} ran out of memory while {name} was answering; ask again (fewer GPU "
            "layers or a shorter context leave more room)"
        )
    if rc == 1:
        return EngineError(f"{name} has no room left in its KV cache; ask again")
    reason = problems[-1] if problems else f"llama_decode returned {rc}"
    return EngineError(f"llama.cpp failed while {name} was answering: {reason}")


def open_llama(
    name: str, path: Path, placed: offload.Plan, **kwargs: Any
) -> tuple[llama_cpp.Llama, Jinja2ChatFormatter]:
    """Load a GGUF with llama.cpp, its layers where `placed` (from `place`) puts them; and the
    chat formatter from its template (ChatML when it has none). EngineError (llama.cpp's own
    reason, or OutOfMemory) when it cannot load."""
    install_log()
    amx.guard()  # before llama.cpp's first quantized matrix product in this process
    recent_problems()
    try:
        llm = llama_cpp.Llama(
            model_path=str(path), verbose=False, n_gpu_layers=placed.gpu_layers, **kwargs
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise memory_error(name, placed, "load") from exc
    template = llm.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
    bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
    eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
    return llm, Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


def load_model(
    name: str,
    path: Path,
    *,
    slots: int,
    asked_ctx: int | None,
    requested: int | None,
    own_ctx: int | None = None,
    **kwargs: Any,
) -> tuple[offload.Context, offload.Plan, llama_cpp.Llama, Jinja2ChatFormatter]:
    """`place` then `open_llama`: the KV cache's size, the layers' placement, the model and its
    chat formatter. The high-level object's own context holds `own_ctx` tokens when given (a
    batched runner makes its own context and keeps that one small), else a conversation's.
    Loaded for embeddings (`embedding=True`), a batch and a micro-batch hold a whole context:
    llama.cpp pools a sequence within one micro-batch, so an input must fit one."""
    pooled = bool(kwargs.get("embedding"))
    context, placed = place(
        name, path, slots=slots, asked_ctx=asked_ctx, requested=requested, pooled=pooled
    )
    log.info("loading %s: %s; %s", name, placed.reason, context.reason)
    n_ctx = min(own_ctx, context.per_sequence) if own_ctx else context.per_sequence
    if own_ctx:
        kwargs["n_batch"] = n_ctx
    if pooled:  # without this, llama-cpp-python's 512 cut every input at 512 tokens
        kwargs["n_batch"] = kwargs["n_ubatch"] = n_ctx
    llm, formatter = open_llama(name, path, placed, n_ctx=n_ctx, **kwargs)
    return context, placed, llm, formatter


def open_batch_context(
    llm: llama_cpp.Llama,
    name: str,
    placed: offload.Plan,
    *,
    n_slots: int,
    n_ctx: int,
    n_batch: int,
    n_threads: int,
    kv_unified: bool,
    flash_attn: bool,
) -> Any:
    """A llama.cpp context (llama_context_p) on `llm`'s model: a KV cache of `n_ctx` cells for
    `n_slots` sequences; EngineError with llama.cpp's reason when it cannot be made."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = n_batch
    params.n_ubatch = 512
    params.n_seq_max = n_slots
    params.n_threads = n_threads
    params.n_threads_batch = n_threads
    params.no_perf = True
    # Unified: the slots share the n_ctx cells; else each has its own stream of n_ctx / n_slots.
    params.kv_unified = kv_unified
    # AUTO, as llama-server: on wherever the device's kernels support it.
    params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        if flash_attn
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
    if not ctx:
        raise memory_error(name, placed, "create a context for")
    return ctx


def render_chat(
    llm: llama_cpp.Llama,
    formatter: Jinja2ChatFormatter,
    messages: list[dict[str, Any]],
    tools: list[Any] | None,
    tool_choice: Any,
    template_kwargs: dict[str, Any] | None = None,
    prefill: str = "",
    check_size: Callable[[int], None] | None = None,
) -> tuple[list[int], tuple[str, ...], str]:
    """Messages through the model's chat template, with a request's extra template variables
    (Qwen3's `enable_thinking`): (prompt tokens, the template's stops, the prompt text, whose
    end says whether the template opened a reasoning block). `prefill`, the start of the
    answer, follows the generation prompt (see `base.split_prefill`). `check_size` sees the
    prompt's length in bytes before it is tokenized (and may refuse it)."""
    try:
        rendered = formatter(
            messages=messages,  # type: ignore[arg-type]
            tools=tools,
            tool_choice=tool_choice,
            **(template_kwargs or {}),
        )
    except Exception as exc:  # the model's own template rejected the conversation
        raise BadRequest(f"the model's chat template rejected the messages: {exc}") from exc
    prompt = rendered.prompt + prefill
    encoded = prompt.encode("utf-8")
    if check_size is not None:
        check_size(len(encoded))
    tokens = llm.tokenize(encoded, add_bos=not rendered.added_special, special=True)
    stops = tuple(s for s in (rendered.stop or []) if isinstance(s, str) and s)
    return tokens, stops, prompt


def control_tokens(llm: llama_cpp.Llama, texts: tuple[str, ...]) -> frozenset[int]:
    """The tokens of `llm`'s vocabulary that are one of `texts` whole and a control token
    (whose text llama.cpp leaves out of output unless asked for it)."""
    vocab = llm._model.vocab
    found = set()
    for text in texts:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        attr = llama_cpp.llama_vocab_get_attr(vocab, tokens[0]) if len(tokens) == 1 else 0
        if attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
            found.add(tokens[0])
    return frozenset(found)
