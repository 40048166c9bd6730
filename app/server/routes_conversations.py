"""/v0/conversations: the Playground's history, saved message by message."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.core.errors import BadRequest, NotFound
from app.core.types import is_text
from app.db.store import ConversationStore
from app.server.http import MESSAGE_BODY_LIMIT, read_object
from app.server.state import balancer

routes = web.RouteTableDef()
ROLES = {"system", "user", "assistant"}
STATUSES = {"done", "stopped", "error"}


def _store(request: web.Request) -> ConversationStore:
    return ConversationStore(balancer(request).store)


def _values(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("title", "model", "system_prompt"):
        if key in body:
            if not is_text(body[key]) or len(body[key]) > 100_000:
                raise BadRequest(
                    f"'{key}' must be a string of valid Unicode (at most 100,000 characters)",
                    param=key,
                )
            out[key] = body[key]
    if "params" in body:
        if not isinstance(body["params"], dict):
            raise BadRequest("'params' must be an object", param="params")
        out["params"] = body["params"]
    return out


@routes.get("/v0/conversations")
async def listing(request: web.Request) -> web.Response:
    """Conversations, the latest first."""
    return web.json_response(await _store(request).listing())


@routes.post("/v0/conversations")
async def create(request: web.Request) -> web.Response:
    """Start a conversation."""
    body = await read_object(request)
    return web.json_response(await _store(request).create(_values(body)), status=201)


@routes.get("/v0/conversations/{cid}")
async def one(request: web.Request) -> web.Response:
    """A conversation with its messages."""
    found = await _store(request).get(request.match_info["cid"])
    if found is None:
        raise NotFound("no such conversation", code="conversation_not_found")
    return web.json_response(found)


@routes.put("/v0/conversations/{cid}")
async def update(request: web.Request) -> web.Response:
    """Rename, or change the model, system prompt or parameters."""
    values = _values(await read_object(request))
    if not await _store(request).update(request.match_info["cid"], values):
        raise NotFound("no such conversation", code="conversation_not_found")
    return web.json_response(await _store(request).get(request.match_info["cid"]))


@routes.delete("/v0/conversations/{cid}")
async def delete(request: web.Request) -> web.Response:
    """Delete a conversation."""
    if not await _store(request).delete(request.match_info["cid"]):
        raise NotFound("no such conversation", code="conversation_not_found")
    return web.Response(status=204)


@routes.post("/v0/conversations/{cid}/messages")
async def add_message(request: web.Request) -> web.Response:
    """Save one complete message."""
    body = await read_object(request, limit=MESSAGE_BODY_LIMIT)
    # A dict or list is unhashable: test the type before the set membership.
    role, status = body.get("role"), body.get("status", "done")
    if not isinstance(role, str) or role not in ROLES:
        raise BadRequest("'role' must be system, user or assistant", param="role")
    if not is_text(body.get("content")):
        raise BadRequest("'content' must be a string of valid Unicode", param="content")
    if not isinstance(status, str) or status not in STATUSES:
        raise BadRequest("'status' must be done, stopped or error", param="status")
    for key in ("attachments", "stats"):
        if key in body and not isinstance(body[key], list if key == "attachments" else dict):
            raise BadRequest(f"'{key}' has the wrong type", param=key)
    store = _store(request)
    if await store.get(request.match_info["cid"]) is None:
        raise NotFound("no such conversation", code="conversation_not_found")
    return web.json_response(await store.add_message(request.match_info["cid"], body), status=201)
