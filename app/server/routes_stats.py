"""/v0/stats: the dashboard's time series of /v1 traffic and node device use."""

from __future__ import annotations

from aiohttp import web

from app.core.errors import BadRequest, NotFound
from app.server.heartbeat import clean_text
from app.server.history import MAX_MODEL_CHARS
from app.server.state import balancer
from app.server.stats import RANGES

routes = web.RouteTableDef()
NODE_ID_CHARS = 200


@routes.get("/v0/stats")
async def stats(request: web.Request) -> web.Response:
    """Buckets of the last hour, day or week, with totals, per model and per node."""
    range_ = request.query.get("range", "24h")
    if range_ not in RANGES:
        raise BadRequest("'range' must be one of 1h, 24h, 7d", param="range")
    model = _filter(request, "model", MAX_MODEL_CHARS)
    node = _filter(request, "node", NODE_ID_CHARS)
    b = balancer(request)
    if b.history.stats is None:
        raise NotFound("this balancer keeps no statistics")
    await b.history.flush()  # a request just answered shows at once
    return web.json_response(await b.history.stats.query(range_, model, node))


def _filter(request: web.Request, name: str, limit: int) -> str | None:
    """An optional name to filter by: 1 to `limit` characters, no control characters."""
    value = request.query.get(name)
    if value is None:
        return None
    if not value or len(value) > limit or clean_text(value, limit) != value:
        raise BadRequest(f"'{name}' must be a {name} name of 1 to {limit} characters", param=name)
    return value
