"""/v0/api-keys: keys for /v1, shown once, stored hashed."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import BadRequest, NotFound
from app.core.types import is_text
from app.server.http import read_object
from app.server.state import balancer

routes = web.RouteTableDef()


@routes.post("/v0/api-keys")
async def create(request: web.Request) -> web.Response:
    """Create a key; its secret is in this answer only."""
    body = await read_object(request)
    name = body.get("name")
    if not is_text(name) or not name.strip() or len(name) > 100:
        raise BadRequest(
            "'name' must be a non-empty string of valid Unicode, at most 100 characters",
            param="name",
        )
    b = balancer(request)
    key = await b.store.create_api_key(name.strip())
    await b.auth.reload_keys()
    return web.json_response(key, status=201)


@routes.get("/v0/api-keys")
async def listing(request: web.Request) -> web.Response:
    """Keys without their secrets; "last used" as this process knows it (the database's figure
    is written at most once a minute)."""
    b = balancer(request)
    keys = await b.store.list_api_keys()
    for key in keys:
        used = b.auth.last_used(key["id"])
        if used is not None and (key["last_used_at"] or 0.0) < used:
            key["last_used_at"] = used
    return web.json_response(keys)


@routes.delete("/v0/api-keys/{key_id}")
async def delete(request: web.Request) -> web.Response:
    """Revoke a key at once."""
    b = balancer(request)
    if not await b.store.delete_api_key(request.match_info["key_id"]):
        raise NotFound("no API key with this id")
    await b.auth.reload_keys()
    return web.Response(status=204)
