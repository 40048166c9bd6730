"""Who may reach the endpoint from a browser: the Host and Origin checks, and CORS.

A web page the user visits can send requests to 127.0.0.1 too. Two defences keep it out:
- **Host**: a page on `attacker.example` that re-points its DNS name at 127.0.0.1 (DNS
  rebinding) sends `Host: attacker.example`; on a loopback bind only loopback names, IP
  literals and this machine's own names are answered. Served on the LAN, where people reach
  the machine by names of their own and every /v1 call needs an API key, any Host is (as
  Ollama does).
- **Origin**: a browser names the page's origin on every cross-origin request. Only loopback
  origins (local web tools) and those on the `LLMLB_ORIGINS` allow-list may call us; a CORS
  preflight is answered for them alone. Requests without an Origin (scripts, editors, curl)
  are not browsers and pass.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from app.core.errors import Forbidden
from app.server.http import Handler

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_PREFLIGHT_MAX_AGE = "600"


def _host_name(host_header: str) -> str:
    """The name part of a Host header (`[::1]:80` → `::1`, `Example:80` → `example`)."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value  # a bare name, or a bare IPv6 address


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback_name(name: str) -> bool:
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _binds_loopback(host: str) -> bool:
    return host == "localhost" or _is_loopback_name(host)


def parse_origins(text: str) -> tuple[str, ...]:
    """The allow-list from its setting: comma-separated origins, `*`, or `scheme://host:*`."""
    return tuple(o.strip().rstrip("/").lower() for o in text.split(",") if o.strip())


@dataclass(frozen=True)
class OriginPolicy:
    """Which Host names and browser Origins the balancer answers."""

    bind_host: str
    allowed_origins: tuple[str, ...] = ()
    own_names: frozenset[str] = frozenset()

    @classmethod
    def for_host(cls, bind_host: str, origins: str) -> OriginPolicy:
        """The policy for a balancer bound to `bind_host` with the LLMLB_ORIGINS setting."""
        hostname = socket.gethostname().lower()
        names = {hostname, f"{hostname}.local", socket.getfqdn().lower()}
        if bind_host and not _is_ip(bind_host) and bind_host not in {"0.0.0.0", "::"}:
            names.add(bind_host.lower())
        return cls(bind_host, parse_origins(origins), frozenset(n for n in names if n))

    @functools.lru_cache(maxsize=256)  # noqa: B019 - policies live as long as the process
    def host_allowed(self, host_header: str | None) -> bool:
        """Whether a request naming this Host may be answered (no Host: HTTP/1.0 scripts)."""
        if not host_header or not _binds_loopback(self.bind_host):
            return True
        name = _host_name(host_header)
        # An IP literal cannot be re-pointed by DNS, so it is never a rebinding attack.
        return _is_loopback_name(name) or _is_ip(name) or name in self.own_names

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def origin_allowed(self, origin: str) -> bool:
        """Whether a page from `origin` may call us: loopback pages, or the allow-list."""
        origin = origin.strip().rstrip("/").lower()
        parts = urlsplit(origin)
        if parts.scheme in {"http", "https"} and _is_loopback_name(parts.hostname or ""):
            return True
        return _matches(origin, self.allowed_origins)


def _matches(origin: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        if entry == "*" or entry == origin:
            return True
        if entry.endswith(":*"):
            base = entry[:-2]
            port = origin[len(base) + 1 :] if origin.startswith(base + ":") else ""
            if origin == base or port.isdigit():
                return True
    return False


def origin_middleware(policy: OriginPolicy, then: Middleware | None = None) -> Middleware:
    """The middleware that applies `policy` to every request, preflights included.

    `then`, the next middleware (auth), runs inside this one: one layer fewer for aiohttp to
    wrap on every request (measured on bench/proxy.py's request path).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.host_allowed(request.headers.get("Host")):
            raise Forbidden(
                "this endpoint answers only requests addressed to this machine (loopback names, "
                "its IP addresses or host name); the Host header named another",
                code="host_not_allowed",
            )
        origin = request.headers.get("Origin")
        if origin is None:
            return await (handler(request) if then is None else then(request, handler))
        if not policy.origin_allowed(origin):
            raise Forbidden(
                f"web pages from {origin[:200]!r} may not call this endpoint; add the origin to "
                "LLMLB_ORIGINS (comma-separated) to allow it",
                code="origin_not_allowed",
            )
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _preflight(request, origin)
        return await (handler(request) if then is None else then(request, handler))

    return middleware


def _preflight(request: web.Request, origin: str) -> web.Response:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = _ALLOWED_METHODS
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        response.headers["Access-Control-Allow-Headers"] = requested[:1000]
    response.headers["Access-Control-Max-Age"] = _PREFLIGHT_MAX_AGE
    _allow(response, origin)
    return response


def _allow(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: an allowed page may read the answer (streams included)."""
    origin = request.headers.get("Origin")
    if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
        policy = request.app[ORIGIN_POLICY]
        if policy.origin_allowed(origin):
            _allow(response, origin)
            response.headers["Access-Control-Expose-Headers"] = "x-llmlb-node"


ORIGIN_POLICY = web.AppKey("origin_policy", OriginPolicy)
