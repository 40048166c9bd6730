"""/v0/models: the Model Hub, registration, deletion and node manifests."""

from __future__ import annotations

from aiohttp import web

from app.core.events import ModelRetried
from app.server.http import read_object
from app.server.model_retry import retry_on_nodes
from app.server.state import balancer

routes = web.RouteTableDef()


@routes.get("/v0/models/hub")
async def hub(request: web.Request) -> web.Response:
    """The catalog with statuses (never waits on Hugging Face)."""
    return web.json_response(await balancer(request).registry.hub())


@routes.post("/v0/models/register")
async def register(request: web.Request) -> web.Response:
    """Register a catalog model or a Hugging Face repo (metadata only)."""
    body = await read_object(request)
    return web.json_response(await balancer(request).registry.register(body), status=201)


@routes.get("/v0/models")
async def registered(request: web.Request) -> web.Response:
    """Registered models with per-node state."""
    return web.json_response(await balancer(request).registry.registered())


@routes.get("/v0/models/registry/{name:.+}/manifest.json")
async def manifest(request: web.Request) -> web.Response:
    """What a node downloads for a model."""
    return web.json_response(await balancer(request).registry.manifest(request.match_info["name"]))


@routes.post("/v0/models/{name:.+}/retry")
async def retry(request: web.Request) -> web.Response:
    """Try a model in error again on every node holding it in error (its Retry button): a
    failed load loads again on the next request, a failed download is fetched again."""
    b = balancer(request)
    record = await b.registry.require(request.match_info["name"])
    retried = await retry_on_nodes(b.nodes, record.name)
    b.bus.publish(ModelRetried(record.name))
    return web.json_response({"name": record.name, "retried_nodes": retried})


@routes.get("/v0/models/{name:.+}")
async def one(request: web.Request) -> web.Response:
    """One registered model with its state."""
    registry = balancer(request).registry
    return web.json_response(registry.entry(await registry.require(request.match_info["name"])))


@routes.patch("/v0/models/{name:.+}")
async def update(request: web.Request) -> web.Response:
    """Change a model's settings: `{"gpu_layers": N|null}` (-1 all, 0 CPU only, null: each
    node's own setting); answers the model's entry."""
    name = request.match_info["name"]
    body = await read_object(request)
    return web.json_response(await balancer(request).registry.update(name, body))


@routes.delete("/v0/models/{name:.+}")
async def delete(request: web.Request) -> web.Response:
    """Unregister a model; every node deletes its files at its next sync."""
    await balancer(request).registry.delete(request.match_info["name"])
    return web.Response(status=204)
