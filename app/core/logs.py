"""Logging: human text on stderr, JSON lines in a rotating private file in the data dir."""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path
from typing import Any

from app.core.paths import make_private
from app.core.wire import LogEntry

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_NAME = "llmlb.jsonl"
MAX_BYTES = 5_000_000  # per file; with BACKUPS the log keeps at most 20 MB
BACKUPS = 3
BAD_REQUEST_TEXT = 200  # characters of a malformed request's error kept in its warning line


def log_file(data_dir: Path) -> Path:
    """Where a process using `data_dir` writes its structured log."""
    return data_dir / "logs" / LOG_NAME


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that only the user can read (it names models, nodes and errors)."""

    def _open(self) -> Any:
        stream = super()._open()
        make_private(Path(self.baseFilename))
        return stream


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record (a `LogEntry`), so the log filters without regexes."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line: at, level, logger, message and, when there is one, exc."""
        entry: LogEntry = {
            "at": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        trace = [t for t in (record.exc_text, record.stack_info) if t]
        if trace:
            entry["exc"] = "\n".join(trace)
        # Not ASCII-escaped: a keyword typed in the Logs page matches the line as written.
        return json.dumps(entry, ensure_ascii=False)


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a client's malformed request (a request line over 8190 bytes, a bad
    header) as an ERROR with a traceback, though it answered 400 and nothing of ours failed:
    one WARNING line says it without hiding real errors among tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place when it is about a malformed request; keep all."""
        # Imported here: this module is imported on every launch, before aiohttp is needed.
        from aiohttp.http_exceptions import BadHttpMessage

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
            record.msg = "malformed request from %s answered %s: %s: %s"
            said = " ".join(str(exc).split())[:BAD_REQUEST_TEXT]  # one line, bounded
            record.args = (remote, exc.code, type(exc).__name__, said)
            record.exc_info = None
            record.exc_text = None
        return True


def _install_request_filter() -> None:
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())


def current_log_file() -> Path | None:
    """The structured log this process writes (None: only stderr). The log is process-wide,
    as logging is: the balancer's `/v0/logs` and a node's `/node/logs` read it."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_llmlb", False) and isinstance(handler, PrivateRotatingFileHandler):
            return Path(handler.baseFilename)
    return None


def setup_logging(data_dir: Path | None, level: int = logging.INFO) -> None:
    """Configure the root logger once (idempotent: handlers are replaced, not added)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_llmlb", False):
            root.removeHandler(handler)
            handler.close()
    text = logging.StreamHandler()
    text.setFormatter(logging.Formatter(FORMAT))
    handlers: list[logging.Handler] = [text]
    if data_dir is not None:
        path = log_file(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        structured = PrivateRotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        structured.setFormatter(JsonLinesFormatter())
        handlers.append(structured)
    for handler in handlers:
        handler._llmlb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    _install_request_filter()
