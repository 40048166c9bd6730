"""Telling a node to sync now, when the registered set changed (its heartbeat heals a miss)."""

from __future__ import annotations

import logging

import aiohttp

from app.server.node_view import NodeView

log = logging.getLogger(__name__)
NOTICE_TIMEOUT = aiohttp.ClientTimeout(total=5)  # per notice, whatever the session's


async def notify_sync(http: aiohttp.ClientSession, view: NodeView) -> None:
    """POST /node/sync to one node; a failure is only logged (the next heartbeat catches up)."""
    try:
        async with http.post(
            view.url + "/node/sync",
            headers=view.auth_headers(),
            ssl=view.ssl(),
            timeout=NOTICE_TIMEOUT,
        ) as r:
            await r.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("sync notice to %s failed (its heartbeat will catch up): %s", view.id, exc)
