"""A model's Retry: the nodes holding it in error are told to try it again."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import aiohttp

from app.core.types import ModelState
from app.server.node_view import NodeView
from app.server.nodes import NodeRegistry

log = logging.getLogger(__name__)
RETRY_TIMEOUT = aiohttp.ClientTimeout(total=5)  # per node


async def retry_on_nodes(nodes: NodeRegistry, name: str) -> list[str]:
    """Ask every live node that reports `name` in error to try it again (a failed load loads
    again on its next request, a failed download is fetched again); the ids of the nodes that
    did. A node that cannot be reached is only logged (its state stays as it reported)."""
    if nodes.http is None:
        return []
    http = nodes.http
    views = [
        v
        for v in nodes.nodes.values()
        if v.live
        and v.kind != "external"
        and (s := v.models.get(name)) is not None
        and s.state == ModelState.ERROR
    ]
    told = await asyncio.gather(*(_retry(http, v, name) for v in views))
    return [v.id for v, ok in zip(views, told, strict=True) if ok]


async def _retry(http: aiohttp.ClientSession, view: NodeView, name: str) -> bool:
    try:
        async with http.post(
            f"{view.url}/node/models/{quote(name, safe='/')}/retry",
            headers=view.auth_headers(),
            ssl=view.ssl(),
            timeout=RETRY_TIMEOUT,
        ) as r:
            body = await r.json(content_type=None) if r.status == 200 else {}
            return isinstance(body, dict) and body.get("retried") is True
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.info("retry of %s on %s failed: %s", name, view.id, exc)
        return False
