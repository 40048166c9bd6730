"""The logs route of the OpenAPI document (see `operations`)."""

from __future__ import annotations

from app.core.log_query import LEVELS, MAX_KEYWORD, MAX_LIMIT
from app.server.openapi.builders import (
    Access,
    Query,
    Reply,
    Route,
    array,
    boolean,
    error,
    integer,
    json_reply,
    number,
    obj,
    string,
)

_ENTRY = obj(
    {
        "at": number("Unix time of the record"),
        "level": string(enum=list(LEVELS)),
        "logger": string("The module that logged it"),
        "message": string(),
        "exc": string("The traceback, when one was logged"),
    },
    ("at", "level", "logger", "message"),
)
_LOGS = obj(
    {
        "source": string('"balancer" or the node\'s id'),
        "entries": array(_ENTRY, "Newest last"),
        "truncated": boolean("More matched than `limit` (older entries were left out)"),
    },
    ("source", "entries", "truncated"),
)

LOG_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v0/logs",
        "Structured log entries of the balancer or of one node (fetched from the node), "
        "newest last; `format=text|jsonl` answers a file to save",
        "logs",
        Access.ADMIN,
        (
            json_reply(200, "The entries that match", _LOGS),
            Reply(200, "The entries as readable text (format=text)", string(), "text/plain"),
            Reply(200, "The entries as JSON lines (format=jsonl)", string(), "application/jsonl"),
            error(
                400,
                "A bad parameter (`error.param` names it), or a node whose logs llmlb cannot "
                "read (an external server)",
            ),
            error(404, "No node with that id"),
            error(502, "The node did not answer, or answered something that is no log"),
            error(503, "The node is offline"),
        ),
        query=(
            Query("source", string(), '"balancer" (the default) or a node\'s id'),
            Query("level", string(enum=list(LEVELS)), "The lowest level shown"),
            Query("since", number(minimum=0), "Unix seconds: entries at or after"),
            Query("until", number(minimum=0), "Unix seconds: entries at or before"),
            Query(
                "q",
                string(maxLength=MAX_KEYWORD),
                "A keyword: case-insensitive substring of the message, logger or traceback",
            ),
            Query("limit", integer(minimum=1, maximum=MAX_LIMIT), "How many, 500 by default"),
            Query("format", string(enum=["json", "text", "jsonl"]), "json (the default)"),
        ),
    ),
)
