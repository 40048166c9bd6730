"""/v0/requests and /v0/queue: the request history (with each request's bodies) and the
requests waiting and running now."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import BadRequest, NotFound
from app.core.wire import RequestDetail
from app.server.state import balancer

routes = web.RouteTableDef()
MAX_LIMIT = 1000
_MAX_FILTER_CHARS = 1000  # a node id or model name is far shorter; longer matches nothing


def _number(request: web.Request, name: str, default: int | None) -> int | None:
    """A whole-number query parameter, or BadRequest naming it."""
    value = request.query.get(name)
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number", param=name) from None


def _text(request: web.Request, name: str) -> str | None:
    """A text filter; one that is not storable text (a lone surrogate) is refused."""
    value = request.query.get(name)
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"'{name}' is not valid text", param=name) from None
    return value[:_MAX_FILTER_CHARS]


@routes.get("/v0/requests")
async def requests(request: web.Request) -> web.Response:
    """The newest requests first, each with model, node, status, tokens, timings and client
    (kept 7 days); `before` pages back: the requests with an id below it."""
    limit = _number(request, "limit", 100)
    assert limit is not None
    limit = max(1, min(MAX_LIMIT, limit))
    before = _number(request, "before", None)
    node, model = _text(request, "node"), _text(request, "model")
    b = balancer(request)
    await b.history.flush()  # what was just answered is listed too
    return web.json_response(await b.history.store.page(before, limit, node, model))


@routes.get("/v0/requests/{request_id}")
async def one(request: web.Request) -> web.Response:
    """One request with what it sent and what it got back (each capped, the cut marked)."""
    text = request.match_info["request_id"]
    if not text.isascii() or not text.isdigit():
        raise BadRequest("a request id is a whole number", param="request_id")
    b = balancer(request)
    await b.history.flush()
    found = await b.history.store.one(int(text))
    if found is None:
        raise NotFound(f"no request {text[:40]} in the history (kept 7 days)")
    row, bodies = found
    node = b.nodes.nodes.get(row["node_id"]) if row["node_id"] is not None else None
    detail: RequestDetail = {
        **row,
        "request_body": None if bodies is None else bodies["request"],
        "request_truncated": False if bodies is None else bodies["request_truncated"],
        "response_body": None if bodies is None else bodies["response"],
        "response_truncated": False if bodies is None else bodies["response_truncated"],
        "node_name": None if node is None else node.name,
    }
    return web.json_response(detail)


@routes.get("/v0/queue")
async def queue(request: web.Request) -> web.Response:
    """Requests waiting for a slot (in order, with position and ETA) and running, per model."""
    return web.json_response(balancer(request).dispatcher.snapshot())
