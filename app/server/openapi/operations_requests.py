"""The request history and live queue routes of the OpenAPI document (see `operations`)."""

from __future__ import annotations

from app.server.openapi.builders import (
    Access,
    Query,
    Route,
    Schema,
    array,
    boolean,
    integer,
    json_reply,
    nullable,
    number,
    obj,
    string,
)

_HISTORY_FIELDS: dict[str, Schema] = {
    "id": integer("Ids grow with time: page back with `before`"),
    "at": number("When it ended (Unix seconds)"),
    "endpoint": string("The path the client called"),
    "model": string(),
    "node_id": nullable(string()),
    "status": integer("The status the client got"),
    "stream": boolean(),
    "latency_ms": nullable(number("Until the node's first byte (time to first token)")),
    "duration_ms": number(),
    "error": nullable(string()),
    "tokens_in": nullable(integer("The answer's usage.prompt_tokens")),
    "tokens_out": nullable(integer("usage.completion_tokens")),
    "generation_ms": nullable(number("Time spent generating tokens_out")),
    "client": nullable(string("The API key's name; `admin` for the admin token; null: open /v1")),
}
HISTORY_ENTRY = obj(_HISTORY_FIELDS, tuple(_HISTORY_FIELDS))
REQUEST_DETAIL = obj(
    {
        **_HISTORY_FIELDS,
        "request_body": nullable(string("As the client sent it, at most 256 KB")),
        "request_truncated": boolean(),
        "response_body": nullable(
            string(
                "As relayed, at most 256 KB; a stream assembled into one answer object "
                "(`llmlb_assembled: true`), or its events as sent when another API's"
            )
        ),
        "response_truncated": boolean(),
        "node_name": nullable(string()),
    },
    (*_HISTORY_FIELDS, "request_body", "request_truncated", "response_body", "response_truncated"),
)
_QUEUE_ENTRY = obj(
    {
        "id": string(),
        "model": string(),
        "endpoint": string(),
        "client": nullable(string()),
        "since": number("When it began waiting, or running (Unix seconds)"),
        "position": nullable(integer("1: next to run; null while running", minimum=1)),
        "eta_seconds": nullable(
            number("Expected seconds until it runs, from the model's measured request time")
        ),
        "node_id": nullable(string("Where it runs")),
    },
    ("id", "model", "endpoint", "client", "since", "position", "eta_seconds", "node_id"),
)
QUEUE = obj(
    {
        "waiting": array(_QUEUE_ENTRY, "In queue order per model"),
        "running": array(_QUEUE_ENTRY),
        "models": array(
            obj(
                {
                    "model": string(),
                    "waiting": integer(),
                    "running": integer(),
                    "slots": integer("Slots of the online nodes that have the model ready"),
                },
                ("model", "waiting", "running", "slots"),
            )
        ),
    },
    ("waiting", "running", "models"),
)

REQUEST_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v0/requests",
        "The newest requests first (kept 7 days); `before` pages back",
        "requests",
        Access.ADMIN,
        (json_reply(200, "Request records, newest first", array(HISTORY_ENTRY)),),
        query=(
            Query("before", integer(), "Only requests with an id below this (the next page)"),
            Query("limit", integer(minimum=1, maximum=1000), "How many (1 to 1000)"),
            Query("node", string(), "Only this node's (its id)"),
            Query("model", string(), "Only this model's"),
        ),
        errors=(400,),
    ),
    Route(
        "GET",
        "/v0/requests/{request_id}",
        "One request with its request and response bodies (each capped at 256 KB, the cut marked)",
        "requests",
        Access.ADMIN,
        (json_reply(200, "The request", REQUEST_DETAIL),),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/v0/queue",
        "Requests waiting for a free slot (position, ETA) and running, per model",
        "requests",
        Access.ADMIN,
        (json_reply(200, "The live queue", QUEUE),),
    ),
)
