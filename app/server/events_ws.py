"""/v0/events: a WebSocket that pushes every bus event as JSON, `{"type", "seq", "data"}`.

`seq` is the bus's number for the event: one more per event, so a client that sees a gap
missed events (it was dropped for being slow, or reconnected) and should refetch. The hello
message carries the number of the last event before the socket's first one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import WSMsgType, web

from app.core.events import Event
from app.server.auth import TICKET_TTL
from app.server.state import balancer

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SOCKETS = web.AppKey("event_sockets", set[web.WebSocketResponse])

QUEUE_LIMIT = 1000  # a client this far behind is dropped rather than growing memory


@routes.post("/v0/events/ticket")
async def ticket(request: web.Request) -> web.Response:
    """A one-time ticket for browsers, which cannot send headers with a WebSocket:
    `GET /v0/events?ticket=...` within 30 s (the admin token never goes in a URL)."""
    auth = balancer(request).auth
    return web.json_response({"ticket": auth.issue_ticket(), "expires_in": int(TICKET_TTL)})


@routes.get("/v0/events")
async def events(request: web.Request) -> web.WebSocketResponse:
    """Subscribe to the bus until the client leaves."""
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_LIMIT)

    def deliver(event: Event) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("events client too slow; closing it")
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    bus = balancer(request).bus
    unsubscribe = bus.subscribe(deliver)
    hello = {"type": "hello", "seq": bus.seq, "data": {}}  # read with subscribing: no gap
    reader = asyncio.create_task(_drain(ws, queue))
    try:
        await ws.send_str(json.dumps(hello))
        while True:
            event = await queue.get()
            if event is None:
                break
            message = {"type": event.topic, "seq": event.seq, "data": event.payload()}
            await ws.send_str(json.dumps(message))
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        unsubscribe()
        request.app[SOCKETS].discard(ws)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse, queue: asyncio.Queue[Event | None]) -> None:
    """Read (and ignore) client frames so pings and close frames are handled."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(None)


def setup(app: web.Application) -> None:
    """Add the route, and close every socket when the server shuts down."""
    sockets: set[web.WebSocketResponse] = set()
    app[SOCKETS] = sockets
    app.router.add_routes(routes)

    async def close_all(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=1001, message=b"server shutting down")

    app.on_shutdown.append(close_all)
