"""Route llama.cpp's own log into Python logging, keeping its recent errors to explain failures."""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque

import llama_cpp

log = logging.getLogger("llama.cpp")
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
def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    global _last_level
    py_level = _LEVELS.get(level, _last_level)  # 5 = "continue the previous line"
    _last_level = py_level
    line = text.decode("utf-8", "replace").rstrip()
    if not line:
        return
    if py_level >= logging.WARNING:
        with _lock:
            _recent.append(line)
    if log.isEnabledFor(py_level):
        log.log(py_level, "%s", line)


def install() -> None:
    """Make llama.cpp log through us (idempotent)."""
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def recent_problems() -> list[str]:
    """llama.cpp's latest warnings and errors, oldest first, and forget them."""
    with _lock:
        lines = list(_recent)
        _recent.clear()
    return lines
