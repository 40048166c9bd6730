"""The OpenAPI 3.1 document of the balancer's HTTP API, one declaration per route.

Built in code from small typed builders (`builders`) rather than written as one big JSON file:
each route is declared once in `operations`, each shared body or answer once in `components`
(/v0) or `openai_schemas` (/v1). tests/server/test_openapi.py checks that every route of the app
is declared and that nothing declared is missing from the app.
"""

from __future__ import annotations

import copy
import functools

from aiohttp import web

from app import __version__
from app.server.openapi.anthropic_schemas import ANTHROPIC
from app.server.openapi.builders import (
    ERROR_TEXT,
    SECURITY,
    Access,
    Reply,
    Route,
    Schema,
    error,
    ref,
    string,
)
from app.server.openapi.components import MANAGEMENT
from app.server.openapi.openai_schemas import OPENAI
from app.server.openapi.operations import ROUTES
from app.server.openapi.responses_schemas import RESPONSES

routes = web.RouteTableDef()
_SSE = "text/event-stream"
_STREAMED = {"/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses"}
_ANTHROPIC = "/v1/messages"  # paths whose errors are in Anthropic's shape
# The answer of a request that found every slot busy, and of a 429 queue_full / 504
# queue_timeout (app.server.dispatch.POSITION_HEADER).
QUEUE_POSITION = {
    "x-llmlb-queue-position": {
        "description": "Where the request joined its model's queue (1: next to run) because "
        "every slot was busy; absent when it did not wait",
        "schema": {"type": "integer", "minimum": 1},
    }
}


# -- the document ---------------------------------------------------------------------------
def _operation(route: Route) -> Schema:
    op: Schema = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "tags": [route.tag],
        "security": SECURITY[route.access],
    }
    params: list[Schema] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            **({"description": note} if (note := (route.path_notes or {}).get(name)) else {}),
        }
        for name in _path_params(route.path)
    ]
    params += [
        {"name": q.name, "in": "query", "required": False, "schema": q.schema}
        | ({"description": q.description} if q.description else {})
        for q in route.query
    ]
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    responses: dict[str, Schema] = {}
    for reply in route.replies:
        answer: Schema = {"description": reply.description}
        if reply.schema is not None:
            content = {reply.media: {"schema": reply.schema}}
            if reply.status == 200 and route.path in _STREAMED:
                content[_SSE] = {"schema": string(_sse_text(route.path))}
            answer["content"] = content
        if (same := responses.get(str(reply.status))) is not None and "content" in answer:
            same.setdefault("content", {}).update(answer["content"])  # one status, more media
            continue
        responses[str(reply.status)] = answer
    statuses = set(route.errors) | {403}  # every route: the Host and Origin checks
    if route.body is not None:
        statuses |= {400, 413, 415}
    if route.access not in {Access.PUBLIC, Access.METRICS}:
        statuses.add(401)
    if route.path.startswith("/v1/") and route.method == "POST":
        statuses.add(503)  # serving paused
    queued = route.access == Access.INFERENCE and route.method == "POST"
    if queued:
        statuses |= {429, 504}  # the model's queue is full; waited too long in it
    for status in sorted(statuses):
        reply = error(status, ERROR_TEXT[status])
        if route.path.startswith(_ANTHROPIC):
            reply = Reply(status, reply.description, ref("AnthropicError"))
        responses.setdefault(str(status), _reply(reply))
    if queued:
        for answer_status in ("200", "429", "504"):
            responses[answer_status]["headers"] = QUEUE_POSITION
    op["responses"] = responses
    return op


def _sse_text(path: str) -> str:
    if path.startswith(_ANTHROPIC):
        return "Anthropic's `event: {type}` / `data: {json}` events, message_start to message_stop"
    if path == "/v1/responses":
        return "`event: {type}` / `data: {json}` events, response.created to response.completed"
    return "`data: {chunk}` lines, then `data: [DONE]`"


def _reply(reply: Reply) -> Schema:
    answer: Schema = {"description": reply.description}
    if reply.schema is not None:
        answer["content"] = {reply.media: {"schema": reply.schema}}
    return answer


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _operation_id(route: Route) -> str:
    words = [p.strip("{}") for p in route.path.split("/") if p and p not in {"v0", "v1"}]
    cleaned = "_".join(w.replace("-", "_").replace(".", "_") for w in words) or "root"
    return f"{route.method.lower()}_{cleaned}"


@functools.cache
def build_document() -> Schema:
    """The OpenAPI 3.1 document (built once; callers must not change it)."""
    paths: dict[str, dict[str, Schema]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llmlb",
            "version": __version__,
            "description": (
                "The llmlb balancer: `/v0` is the management API (admin token), `/v1` is "
                "OpenAI-compatible (an API key, unless the server is on loopback with no keys). "
                "Every error has OpenAI's shape `{error: {message, type, param, code}}`."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {**MANAGEMENT, **OPENAI, **ANTHROPIC, **RESPONSES},
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (LLMLB_ADMIN_TOKEN, or the data dir's file)",
                },
                "eventsTicket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "A one-time ticket from POST /v0/events/ticket, valid 30 s "
                    "(browsers cannot send headers with a WebSocket; the admin token never goes "
                    "in a URL)",
                },
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from POST /v0/api-keys (or the admin token)",
                },
                "joinToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The cluster join token (GET /v0/cluster), or the admin token",
                },
                "nodeToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Node-Token",
                    "description": "The token a node was given when it registered",
                },
            },
        },
    }


# Public like /health (auth.py's PUBLIC_PATHS): the document holds no secrets, and tools
# read it to learn the API before they have a token.
@routes.get("/v0/openapi.json")
async def document(request: web.Request) -> web.Response:
    """This API's OpenAPI document, naming this server as the one to call."""
    doc = copy.copy(build_document())
    doc["servers"] = [{"url": str(request.url.origin())}]
    return web.json_response(doc)
