"""The node's own HTTP app: OpenAI inference on /v1, status and sync on /node."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from app.core.errors import Unauthorized, UserFacingError
from app.core.log_query import parse_filter, query_log
from app.core.logs import current_log_file
from app.core.secrets import same_secret
from app.node import inference
from app.node.models import NodeModels
from app.node.sync import SyncWorker

log = logging.getLogger(__name__)


class ServedNode(Protocol):
    """What the node's HTTP app needs from the running node (the agent is one)."""

    balancer_token: str | None  # what our balancer presents; None until we registered
    models: NodeModels
    sync: SyncWorker

    def status(self) -> dict[str, Any]:
        """The node's own view, for /node/status."""
        ...


NODE: web.AppKey[ServedNode] = web.AppKey("node")
BODY_LIMIT = 128 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserFacingError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = UserFacingError(f"{request.method} {request.path}: {exc.reason}", status=exc.status)
        return web.json_response(err.body(), status=exc.status)
    except Exception:
        log.exception("node error on %s", request.path)
        return web.json_response(inference.internal_error().body(), status=500)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only our balancer may call the node: it presents the balancer token it gave us."""
    node = request.app[NODE]
    expected = node.balancer_token
    presented = request.headers.get("X-Balancer-Token", "")
    matches = same_secret(presented, expected or "")
    if request.path != "/health" and not matches:
        raise Unauthorized("this node only answers its balancer (X-Balancer-Token)")
    return await handler(request)


def create_node_app(node: ServedNode) -> web.Application:
    """The node's application."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=BODY_LIMIT)
    app[NODE] = node
    app.router.add_get("/health", _health)
    app.router.add_get("/node/status", _status)
    app.router.add_post("/node/sync", _sync)
    app.router.add_post("/node/models/{name:.+}/retry", _retry)
    app.router.add_get("/node/logs", _logs)
    app.router.add_get("/v1/models", _models)
    for path in inference.ROUTES:
        app.router.add_post(path, _inference)
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE].status())


async def _sync(request: web.Request) -> web.Response:
    request.app[NODE].sync.trigger()
    return web.json_response({"status": "sync started"}, status=202)


async def _retry(request: web.Request) -> web.Response:
    """Try a model in error again (its Retry): `retried` false when it is not in error here."""
    name = request.match_info["name"]
    retried = request.app[NODE].models.retry(name)
    return web.json_response({"model": name, "retried": retried})


async def _logs(request: web.Request) -> web.Response:
    """This node's structured log, filtered as `GET /v0/logs` asks (the balancer relays it)."""
    filt = parse_filter(request.query)
    return web.json_response(await query_log(current_log_file(), "node", filt))


async def _models(request: web.Request) -> web.Response:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "llmlb-node"}
        for name in request.app[NODE].models.ready()
    ]
    return web.json_response({"object": "list", "data": data})


async def _inference(request: web.Request) -> web.StreamResponse:
    """`/v1` inference: the reply of `app.node.inference`, as JSON or as an SSE stream."""

    def client_gone() -> bool:
        return request.transport is None or request.transport.is_closing()

    raw = await request.read()
    reply = await inference.answer(request.app[NODE].models, request.path, raw, client_gone)
    if isinstance(reply, inference.JsonReply):
        return web.json_response(reply.body, status=reply.status)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    events = reply.events()
    try:
        async for data in events:
            await response.write(data)
    except (ConnectionResetError, ConnectionError):
        log.info("client left mid-stream; generation cancelled")
        return response
    finally:
        await events.aclose()
    await response.write_eof()
    return response
