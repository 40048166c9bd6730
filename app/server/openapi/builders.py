"""Typed builders of the OpenAPI document: JSON Schema helpers and one route's declaration."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

Schema = dict[str, Any]


# -- schema builders ------------------------------------------------------------------
def ref(name: str) -> Schema:
    """A reference to a schema in components."""
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str = "", **constraints: Any) -> Schema:
    """A string schema."""
    return _described({"type": "string", **constraints}, description)


def integer(description: str = "", **constraints: Any) -> Schema:
    """An integer schema."""
    return _described({"type": "integer", **constraints}, description)


def number(description: str = "", **constraints: Any) -> Schema:
    """A number schema."""
    return _described({"type": "number", **constraints}, description)


def boolean(description: str = "") -> Schema:
    """A boolean schema."""
    return _described({"type": "boolean"}, description)


def array(items: Schema, description: str = "", **constraints: Any) -> Schema:
    """An array schema."""
    return _described({"type": "array", "items": items, **constraints}, description)


def nullable(schema: Schema) -> Schema:
    """The schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def one_of(*schemas: Schema, description: str = "") -> Schema:
    """Any one of these shapes (OpenAI's string-or-array fields)."""
    return _described({"anyOf": list(schemas)}, description)


def obj(
    properties: dict[str, Schema],
    required: tuple[str, ...] = (),
    *,
    extra: bool = True,
    description: str = "",
) -> Schema:
    """An object schema; `extra` says whether unknown fields are allowed (and ignored)."""
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if not extra:
        out["additionalProperties"] = False
    return _described(out, description)


def free_object(description: str = "") -> Schema:
    """Any JSON object."""
    return _described({"type": "object"}, description)


def _described(schema: Schema, description: str) -> Schema:
    if description:
        schema["description"] = description
    return schema


# -- route declarations -----------------------------------------------------------------
class Access(Enum):
    """Who may call a route (see app/server/auth.py)."""

    ADMIN = "admin"  # /v0: the admin token
    NODE_READ = "node_read"  # /v0 paths a node may read with its own X-Node-Token
    JOIN = "join"  # node registration: the cluster join token (or the admin token)
    NODE = "node"  # a node's heartbeat: its X-Node-Token
    INFERENCE = "inference"  # /v1: an API key, unless the server is open (loopback, no keys)
    PUBLIC = "public"  # no credentials
    METRICS = "metrics"  # open on loopback; the admin token when bound beyond it
    EVENTS = "events"  # the admin token, or a one-time ticket (browsers' WebSockets)


SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.ADMIN: [{"adminToken": []}],
    Access.NODE_READ: [{"adminToken": []}, {"nodeToken": []}],
    Access.EVENTS: [{"adminToken": []}, {"eventsTicket": []}],
    Access.JOIN: [{"joinToken": []}],
    Access.NODE: [{"nodeToken": []}],
    Access.INFERENCE: [{"apiKey": []}, {}],
    Access.PUBLIC: [{}],
    Access.METRICS: [{}, {"adminToken": []}],
}


@dataclass(frozen=True)
class Reply:
    """One documented answer: status, description, and its body (JSON unless `media` says)."""

    status: int
    description: str
    schema: Schema | None = None
    media: str = "application/json"


@dataclass(frozen=True)
class Query:
    """A query parameter."""

    name: str
    schema: Schema
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One route: method, aiohttp-style path, what it takes and what it answers."""

    method: str
    path: str  # OpenAPI form: `{name}` even where aiohttp matches `{name:.+}`
    summary: str
    tag: str
    access: Access
    replies: tuple[Reply, ...]
    body: Schema | None = None
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()  # error statuses beyond those the access and body imply
    path_notes: dict[str, str] | None = None  # description of each path parameter


def json_reply(status: int, description: str, name_or_schema: str | Schema) -> Reply:
    """A JSON answer: a component's name, or a schema."""
    schema = ref(name_or_schema) if isinstance(name_or_schema, str) else name_or_schema
    return Reply(status, description, schema)


def error(status: int, description: str) -> Reply:
    """An error answer in OpenAI's shape."""
    return Reply(status, description, ref("Error"))


ERROR_TEXT = {
    400: "The request is wrong (bad JSON, a wrong type, a bad name); `error.param` names the field",
    401: "No or wrong credentials",
    404: "Not found",
    409: "Conflict with the current state",
    403: "A web page whose origin is not allowed (LLMLB_ORIGINS), or a Host that is not this "
    "machine (DNS rebinding)",
    413: "The body is larger than this endpoint accepts",
    415: "The body was sent as a form or text/plain: send Content-Type: application/json",
    429: "Too many attempts; Retry-After says when to try again",
    502: "An upstream (Hugging Face, or every node tried) failed or did not answer",
    503: "Cannot answer now (serving paused, model downloading, no capable node)",
    504: "Waited in the model's queue longer than the limit (LLMLB_QUEUE_WAIT) for a free slot",
}

NO_CONTENT = Reply(204, "Done; no body")
