"""Builds the balancer's aiohttp application."""

from __future__ import annotations

from aiohttp import web

from app import __version__
from app.server import (
    api_anthropic,
    api_responses,
    events_ws,
    openapi,
    proxy,
    quantizations,
    routes_conversations,
    routes_join,
    routes_keys,
    routes_logs,
    routes_models,
    routes_nodes,
    routes_openai,
    routes_requests,
    routes_stats,
)
from app.server.http import ERROR_SHAPES, INFERENCE_BODY_LIMIT, error_middleware
from app.server.metrics import response
from app.server.origin import ORIGIN_POLICY, OriginPolicy, add_cors_headers, origin_middleware
from app.server.state import BALANCER, Balancer


def create_app(state: Balancer) -> web.Application:
    """The application with every route and middleware, ready for an AppRunner."""
    policy = OriginPolicy.for_host(state.settings.host, state.settings.origins)
    app = web.Application(
        middlewares=[error_middleware, origin_middleware(policy, then=state.auth.middleware)],
        client_max_size=INFERENCE_BODY_LIMIT,
    )
    app[BALANCER] = state
    app[ORIGIN_POLICY] = policy
    app[ERROR_SHAPES] = ((api_anthropic.PREFIX, api_anthropic.error_body),)
    app.on_response_prepare.append(add_cors_headers)
    app.router.add_get("/health", _health)
    app.router.add_get("/", _root)
    app.router.add_get("/metrics", _metrics)
    for table in (
        quantizations.routes,  # before /v0/models/{name:.+}, which would take its path
        routes_models.routes,
        routes_keys.routes,
        routes_openai.routes,
        api_anthropic.routes,
        api_responses.routes,
        routes_nodes.routes,
        routes_requests.routes,
        routes_logs.routes,
        proxy.routes,
        routes_conversations.routes,
        routes_join.routes,
        routes_stats.routes,
        openapi.routes,
    ):
        app.router.add_routes(table)
    app.cleanup_ctx.append(proxy.http_pool)
    app.cleanup_ctx.append(api_responses.response_store)
    events_ws.setup(app)
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


async def _root(request: web.Request) -> web.Response:
    return web.json_response(
        {"name": "llmlb", "version": __version__, "openai_base_url": f"{request.url.origin()}/v1"}
    )


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[BALANCER].history.metrics
    if metrics is None:
        raise web.HTTPNotFound()
    return response(metrics)
