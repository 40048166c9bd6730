"""llama.cpp itself: open a GGUF, render a chat prompt, create a batched context, and route
llama.cpp's own log into Python logging (keeping its recent errors to explain failures)."""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

from app.core.errors import BadRequest
from app.core.system import memory_info
from app.node.engine.types import EngineError

llama_log = logging.getLogger("llama.cpp")
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
    """Raise EngineError with a readable reason if `path` cannot be a loadable GGUF."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise EngineError(f"cannot read the model file {path.name}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise EngineError(f"{path.name} is not a GGUF file (its header is {magic!r})")
    memory = memory_info()
    available = memory.available_bytes if memory else None
    if available is not None and size > available:
        raise EngineError(
            f"{path.name} needs {size / 2**30:.1f} GiB of memory; "
            f"this machine has {available / 2**30:.1f} GiB available"
        )


def open_llama(path: Path, **kwargs: Any) -> tuple[llama_cpp.Llama, Jinja2ChatFormatter]:
    """Load a GGUF with llama.cpp (its own error line as the reason on failure), and the
    chat formatter from its template (ChatML when it has none)."""
    check_gguf(path)
    install_log()
    recent_problems()
    try:
        llm = llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        problems = [p for p in recent_problems() if p]
        reason = problems[-1] if problems else str(exc)
        raise EngineError(f"llama.cpp could not load {path.name}: {reason}") from exc
    template = llm.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
    bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
    eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
    return llm, Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


def open_batch_context(
    llm: llama_cpp.Llama,
    name: str,
    *,
    n_slots: int,
    ctx_per_slot: int,
    n_batch: int,
    n_threads: int,
    kv_unified: bool,
    flash_attn: bool,
) -> Any:
    """A llama.cpp context (llama_context_p) on `llm`'s model for `n_slots` sequences of
    `ctx_per_slot` tokens each; EngineError with llama.cpp's reason when it cannot be made."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_slots * ctx_per_slot
    params.n_batch = n_batch
    params.n_ubatch = 512
    params.n_seq_max = n_slots
    params.n_threads = n_threads
    params.n_threads_batch = n_threads
    params.no_perf = True
    # Not unified: each slot has its own KV stream of ctx_per_slot cells.
    params.kv_unified = kv_unified
    # AUTO, as llama-server: on wherever the device's kernels support it.
    params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        if flash_attn
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
    if not ctx:
        problems = [p for p in recent_problems() if p]
        reason = problems[-1] if problems else "llama_init_from_model failed"
        raise EngineError(f"llama.cpp could not create a context for {name}: {reason}")
    return ctx


def render_chat(
    llm: llama_cpp.Llama,
    formatter: Jinja2ChatFormatter,
    messages: list[dict[str, Any]],
    tools: list[Any] | None,
    tool_choice: Any,
) -> tuple[list[int], tuple[str, ...]]:
    """Messages through the model's chat template: (prompt tokens, the template's stops)."""
    try:
        rendered = formatter(
            messages=messages,  # type: ignore[arg-type]
            tools=tools,
            tool_choice=tool_choice,
        )
    except Exception as exc:  # the model's own template rejected the conversation
        raise BadRequest(f"the model's chat template rejected the messages: {exc}") from exc
    tokens = llm.tokenize(
        rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
    )
    return tokens, tuple(s for s in (rendered.stop or []) if isinstance(s, str) and s)
