"""/v1: the OpenAI-compatible API (model listing here; inference joins with the node)."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import NotFound
from app.core.types import check_model_name
from app.server.state import balancer

routes = web.RouteTableDef()


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    """Models some live node can serve now."""
    data = await balancer(request).registry.servable()
    return web.json_response({"object": "list", "data": data})


@routes.get("/v1/models/{name:.+}")
async def model(request: web.Request) -> web.Response:
    """One servable model, or 404 model_not_found."""
    name = check_model_name(request.match_info["name"])
    for item in await balancer(request).registry.servable():
        if item["id"] == name:
            return web.json_response(item)
    raise NotFound(
        f"the model '{name}' does not exist or no node can serve it",
        code="model_not_found",
        param="model",
    )
