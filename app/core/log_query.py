"""Reading the structured log back: the newest records matching a filter, within bounds."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import BadRequest
from app.core.wire import LogEntry, LogsJson

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
MAX_KEYWORD = 200  # characters of `q`
CHUNK = 64 * 1024
SCAN_BYTES = 24 * 1024 * 1024  # read per query at most: the whole rotated log (4 x 5 MB)
KEEP_BYTES = 4 * 1024 * 1024  # of matching lines held per query at most
LINE_MAX = 256 * 1024  # a longer line is no record of ours: skipped without being held
# Records reach the file in time order, give or take threads racing for the handler's lock:
# reading backwards, a record this much older than `since` means nothing newer is left.
ORDER_SLACK = 60.0
LATEST_AT = 1e11  # unix seconds (year 5138): a later `at` is no record's, and no date prints it


@dataclass(frozen=True)
class LogFilter:
    """What `GET /v0/logs` and `GET /node/logs` ask for."""

    level: int = 0  # the lowest level shown (0: all)
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, inclusive
    q: str = ""  # case-insensitive substring of message, logger or traceback
    limit: int = DEFAULT_LIMIT
    loggers: tuple[str, ...] = ()  # only these loggers and their children (empty: all)

    def matches(self, entry: LogEntry) -> bool:
        """Whether `entry` passes every part of the filter."""
        if LEVELS.get(entry["level"], 0) < self.level:
            return False
        if self.since is not None and entry["at"] < self.since:
            return False
        if self.until is not None and entry["at"] > self.until:
            return False
        name = entry["logger"]
        if self.loggers and not any(name == p or name.startswith(p + ".") for p in self.loggers):
            return False
        if self.q:
            q = self.q.lower()
            fields = (entry["message"], name, entry.get("exc", ""))
            return any(q in f.lower() for f in fields)
        return True

    def query(self) -> dict[str, str]:
        """The filter as query parameters (what the balancer sends a node)."""
        params = {"limit": str(self.limit)}
        if self.level:
            params["level"] = next(n for n, v in LEVELS.items() if v == self.level)
        if self.since is not None:
            params["since"] = repr(self.since)
        if self.until is not None:
            params["until"] = repr(self.until)
        if self.q:
            params["q"] = self.q
        return params


def _seconds(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be unix seconds", param=name) from exc
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"'{name}' must be unix seconds", param=name)
    return value


def parse_filter(query: Mapping[str, str]) -> LogFilter:
    """The filter a request's query asks for, or BadRequest naming the wrong parameter."""
    level_name = query.get("level", "").upper()
    if level_name and level_name not in LEVELS:
        raise BadRequest(f"'level' must be one of {', '.join(LEVELS)}", param="level")
    since, until = _seconds(query, "since"), _seconds(query, "until")
    if since is not None and until is not None and until < since:
        raise BadRequest("'until' is before 'since'", param="until")
    raw_limit = query.get("limit", "")
    try:
        limit = int(raw_limit) if raw_limit else DEFAULT_LIMIT
    except ValueError as exc:
        raise BadRequest(f"'limit' must be 1 to {MAX_LIMIT}", param="limit") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be 1 to {MAX_LIMIT}", param="limit")
    q = query.get("q", "")
    if len(q) > MAX_KEYWORD:
        raise BadRequest(f"'q' is longer than {MAX_KEYWORD} characters", param="q")
    return LogFilter(LEVELS.get(level_name, 0), since, until, q, limit)


def entry_of(value: object) -> LogEntry | None:
    """`value` as a log entry, or None when it is not one (a malformed line, a hostile peer)."""
    if not isinstance(value, dict):
        return None
    at, level, logger, message = (value.get(k) for k in ("at", "level", "logger", "message"))
    exc = value.get("exc")
    if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= at <= LATEST_AT:
        return None
    if level not in LEVELS or not isinstance(logger, str) or not isinstance(message, str):
        return None
    entry: LogEntry = {"at": float(at), "level": str(level), "logger": logger, "message": message}
    if isinstance(exc, str):
        entry["exc"] = exc
    elif exc is not None:
        return None
    return entry


def rotated_files(path: Path) -> list[Path]:
    """The log and its rotated copies, newest first (`llmlb.jsonl`, `.1`, `.2`...)."""
    files = [path] if path.is_file() else []
    n = 1
    while (older := path.with_name(f"{path.name}.{n}")).is_file():
        files.append(older)
        n += 1
    return files


class _Budget:
    """Bytes a query may still read."""

    def __init__(self, total: int) -> None:
        self.left = total


def _lines_backwards(path: Path, budget: _Budget) -> Iterator[bytes]:
    """The lines of `path`, last first, reading chunks from the end while the budget lasts;
    a line longer than LINE_MAX is dropped as it is read, never held whole."""
    try:
        f = path.open("rb")
    except OSError:
        return
    with f:
        pos = f.seek(0, 2)
        rest = b""
        skipping = False  # inside an over-long line
        while pos > 0 and budget.left > 0:
            size = min(CHUNK, pos, budget.left)
            pos -= size
            f.seek(pos)
            chunk = f.read(size)
            budget.left -= size
            parts = (chunk + rest).split(b"\n")
            if skipping:
                if len(parts) == 1:
                    continue  # still inside it
                parts.pop()  # its start; what precedes it is whole again
                skipping = False
            rest = parts[0]
            yield from reversed([p for p in parts[1:] if p])
            if len(rest) > LINE_MAX:
                rest, skipping = b"", True
        if pos == 0 and rest and not skipping:
            yield rest


def _ascii_plain(q: str) -> bool:
    """Whether `q` appears in a JSON line byte for byte (nothing JSON would escape)."""
    return q.isascii() and all(c >= " " and c not in '"\\' for c in q)


def read_log(path: Path, filt: LogFilter) -> tuple[list[LogEntry], bool]:
    """The newest entries of the log at `path` (and its rotations) matching `filt`, newest
    last, and whether more matched than `limit` (or the bounds stopped the search first).
    Blocking: run it in an executor."""
    budget = _Budget(SCAN_BYTES)
    kept = 0
    found: list[LogEntry] = []
    # Lines that cannot hold the keyword are skipped before they are parsed.
    needle = filt.q.lower().encode() if filt.q and _ascii_plain(filt.q) else None
    for file in rotated_files(path):
        for line in _lines_backwards(file, budget):
            if needle is not None and needle not in line.lower():
                continue
            try:
                entry = entry_of(json.loads(line))
            except ValueError:
                continue
            if entry is None:
                continue
            if filt.since is not None and entry["at"] < filt.since - ORDER_SLACK:
                found.reverse()
                return found, False
            if not filt.matches(entry):
                continue
            if len(found) == filt.limit or kept + len(line) > KEEP_BYTES:
                found.reverse()
                return found, True
            found.append(entry)
            kept += len(line)
        if budget.left <= 0:
            found.reverse()
            return found, True  # older records were not read: there may be more
    found.reverse()
    return found, False


async def query_log(path: Path | None, source: str, filt: LogFilter) -> LogsJson:
    """`read_log` off the event loop, as a `LogsJson` answer (no log file: no entries)."""
    if path is None:
        return {"source": source, "entries": [], "truncated": False}
    loop = asyncio.get_running_loop()
    entries, truncated = await loop.run_in_executor(None, read_log, path, filt)
    return {"source": source, "entries": entries, "truncated": truncated}
