"""The thinnest possible aiohttp relay: the Python ceiling that bench/proxy.py holds llmlb to.

One handler forwards each request's body to the upstream through one pooled ClientSession and
streams the answer back buffer by buffer: no auth, no parsing, no logging, no records. It runs
on uvloop, as `llmlb serve` does. Run: `python bench/proxy/relay.py PORT UPSTREAM_URL`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def build(upstream: str) -> web.Application:
    """The relay's application, forwarding every path to `upstream`."""

    async def pool(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        yield
        await app[SESSION].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        url = upstream + request.path_qs
        async with request.app[SESSION].request(
            request.method, url, data=body, headers=headers
        ) as answer:
            response = web.StreamResponse(status=answer.status)
            for name, value in answer.headers.items():
                if name.lower() not in _HOP:
                    response.headers[name] = value
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
    web.run_app(
        build(upstream),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
