"""The structured log: records written through logging read back, filtered, across rotations,
past malformed lines, within bounds however large the file."""

from __future__ import annotations

import json
import logging
import stat
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import log_query
from app.core.errors import BadRequest
from app.core.log_query import LogFilter, parse_filter, query_log, read_log
from app.core.logs import PrivateRotatingFileHandler, current_log_file, log_file, setup_logging


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    """This process logging into a data dir in tmp_path; the log file's path."""
    data = tmp_path / "data"
    data.mkdir()
    setup_logging(data)
    try:
        yield log_file(data)
    finally:
        setup_logging(None)


def line(at: float, level: str, message: str, logger: str = "app.x") -> str:
    return json.dumps({"at": at, "level": level, "logger": logger, "message": message}) + "\n"


def one_object_a_line_private(path: Path) -> bool:
    """Every line of the file is one JSON object, and only the user may read it."""
    lines = path.read_text().splitlines()
    private = stat.S_IMODE(path.stat().st_mode) == 0o600
    return private and all(isinstance(json.loads(raw), dict) for raw in lines)


async def test_records_logged_are_read_back_as_entries_newest_last(logged: Path) -> None:
    assert current_log_file() == logged
    log = logging.getLogger("app.server.example")
    log.info("model %s loaded on %s", "tiny", "desk")
    log.warning("node desk is slow: 「遅い」")
    try:
        raise RuntimeError("the engine fell over")
    except RuntimeError:
        log.exception("request failed")
    answer = await query_log(logged, "balancer", LogFilter())
    ours = [e for e in answer["entries"] if e["logger"] == "app.server.example"]
    assert [e["message"] for e in ours] == [
        "model tiny loaded on desk",
        "node desk is slow: 「遅い」",
        "request failed",
    ]
    assert [e["level"] for e in ours] == ["INFO", "WARNING", "ERROR"]
    assert "RuntimeError: the engine fell over" in ours[2]["exc"]
    assert "exc" not in ours[0]
    assert ours[0]["at"] <= ours[1]["at"] <= ours[2]["at"]
    assert answer["truncated"] is False
    # One JSON object a line on disk, readable by the user alone.
    assert one_object_a_line_private(logged)


async def test_level_time_and_keyword_filter_the_entries(tmp_path: Path) -> None:
    path = tmp_path / "llmlb.jsonl"
    path.write_text(
        line(100, "DEBUG", "probe")
        + line(200, "INFO", "Model Tiny ready")
        + line(300, "WARNING", "node slow", logger="app.node.engine")
        + json.dumps(
            {
                "at": 400,
                "level": "ERROR",
                "logger": "app.server.proxy",
                "message": "request failed",
                "exc": "Traceback...\nConnectionResetError: peer gone",
            }
        )
        + "\n"
    )

    def messages(**query: str) -> list[str]:
        entries, _ = read_log(path, parse_filter(query))
        return [e["message"] for e in entries]

    assert messages() == ["probe", "Model Tiny ready", "node slow", "request failed"]
    assert messages(level="warning") == ["node slow", "request failed"]
    assert messages(since="200", until="300") == ["Model Tiny ready", "node slow"]
    assert messages(q="tiny") == ["Model Tiny ready"]  # any case
    assert messages(q="ENGINE") == ["node slow"]  # the logger's name
    assert messages(q="peer gone") == ["request failed"]  # the traceback
    assert messages(q="[a-z]+") == []  # a keyword, never a regex
    entries, truncated = read_log(path, parse_filter({"limit": "2"}))
    assert [e["message"] for e in entries] == ["node slow", "request failed"]  # the newest
    assert truncated is True
    local = LogFilter(loggers=("app.node", "llama.cpp"))
    assert [e["message"] for e in read_log(path, local)[0]] == ["node slow"]


def test_bad_parameters_are_refused_naming_the_parameter() -> None:
    for query, param in (
        ({"level": "LOUD"}, "level"),
        ({"since": "yesterday"}, "since"),
        ({"until": "nan"}, "until"),
        ({"since": "-1"}, "since"),
        ({"since": "20", "until": "10"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"q": "x" * 201}, "q"),
    ):
        with pytest.raises(BadRequest) as caught:
            parse_filter(query)
        assert caught.value.param == param, query


def test_rotated_files_are_read_newest_last(logged: Path) -> None:
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h, PrivateRotatingFileHandler)
    )
    log = logging.getLogger("app.rotation")
    log.info("first")
    handler.doRollover()
    log.info("second")
    handler.doRollover()
    log.info("third")
    assert log_file(logged.parent.parent).with_name("llmlb.jsonl.2").is_file()
    entries, truncated = read_log(logged, LogFilter(q="app.rotation"))
    assert [e["message"] for e in entries] == ["first", "second", "third"]
    assert truncated is False


def test_malformed_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "llmlb.jsonl"
    path.write_text(
        line(1, "INFO", "before")
        + "not json at all\n"
        + '{"at": "noon", "level": "INFO", "logger": "x", "message": "bad time"}\n'
        + '{"at": 2, "level": "LOUD", "logger": "x", "message": "bad level"}\n'
        + '{"at": 1e300, "level": "INFO", "logger": "x", "message": "far future"}\n'
        + "[1, 2, 3]\n\n\x00\xff garbage\n"
        + '{"at": 3, "level": "INFO", "logger": "x", "message": "cut sho'  # a torn last write
        + "\n"
        + line(4, "INFO", "after")
    )
    entries, _ = read_log(path, LogFilter())
    assert [e["message"] for e in entries] == ["before", "after"]


def test_a_huge_log_is_read_within_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "llmlb.jsonl"
    filler = line(50, "INFO", "filler " + "x" * 500)
    with path.open("w") as f:
        f.write(line(1, "INFO", "the oldest record"))
        f.write("y" * (3 * 1024 * 1024) + "\n")  # one line of 3 MB: no record of ours
        f.write(filler * 40_000)  # about 21 MB
        f.write(line(99, "ERROR", "the newest record"))
    tracemalloc.start()
    try:
        entries, truncated = read_log(path, LogFilter(q="record"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The search stopped after SCAN_BYTES (before the oldest record) and said so.
    assert [e["message"] for e in entries] == ["the newest record"]
    assert truncated is True
    assert peak < 4 * 1024 * 1024
    # Everything matches: what is held stops at KEEP_BYTES, the newest kept.
    entries, truncated = read_log(path, LogFilter(limit=5000))
    assert truncated is True
    assert entries[-1]["message"] == "the newest record"
    assert len(entries) * len(filler) <= log_query.KEEP_BYTES + len(filler)
    # A larger budget reaches the oldest record past the over-long line, which is skipped.
    monkeypatch.setattr(log_query, "SCAN_BYTES", 64 * 1024 * 1024)
    entries, truncated = read_log(path, LogFilter(q="record"))
    assert [e["message"] for e in entries] == ["the oldest record", "the newest record"]
    assert truncated is False
