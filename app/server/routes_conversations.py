"""/v0/conversations: the Playground's history, saved message by message."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import BadRequest, NotFound
from app.core.types import MessageStatus, Role, enum_member, is_text
from app.core.wire import JsonObject
from app.db.conversations import ConversationFields, ConversationStore, NewMessage
from app.server.http import MESSAGE_BODY_LIMIT, read_object
from app.server.state import balancer

routes = web.RouteTableDef()


def _store(request: web.Request) -> ConversationStore:
    return ConversationStore(balancer(request).store)


def _text(body: JsonObject, key: str) -> str:
    value = body[key]
    if not is_text(value) or len(value) > 100_000:
        raise BadRequest(
            f"'{key}' must be a string of valid Unicode (at most 100,000 characters)", param=key
        )
    return value


def _values(body: JsonObject) -> ConversationFields:
    out = ConversationFields()
    if "title" in body:
        out["title"] = _text(body, "title")
    if "model" in body:
        out["model"] = _text(body, "model")
    if "system_prompt" in body:
        out["system_prompt"] = _text(body, "system_prompt")
    if "params" in body:
        params = body["params"]
        if not isinstance(params, dict):
            raise BadRequest("'params' must be an object", param="params")
        out["params"] = params
    return out


def _message(body: JsonObject) -> NewMessage:
    """A message body, checked field by field."""
    role = enum_member(Role, body.get("role"))
    if role is None:
        raise BadRequest("'role' must be system, user or assistant", param="role")
    content = body.get("content")
    if not is_text(content):
        raise BadRequest("'content' must be a string of valid Unicode", param="content")
    status = enum_member(MessageStatus, body.get("status", MessageStatus.DONE))
    if status is None:
        raise BadRequest("'status' must be done, stopped, error or interrupted", param="status")
    attachments = body.get("attachments", [])
    if not isinstance(attachments, list):
        raise BadRequest("'attachments' has the wrong type", param="attachments")
    stats = body.get("stats", {})
    if not isinstance(stats, dict):
        raise BadRequest("'stats' has the wrong type", param="stats")
    return {
        "role": role,
        "content": content,
        "attachments": attachments,
        "status": status,
        "stats": stats,
    }


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
    message = _message(await read_object(request, limit=MESSAGE_BODY_LIMIT))
    store = _store(request)
    if await store.get(request.match_info["cid"]) is None:
        raise NotFound("no such conversation", code="conversation_not_found")
    return web.json_response(
        await store.add_message(request.match_info["cid"], message), status=201
    )
