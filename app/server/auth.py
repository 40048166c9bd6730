"""Who may call what: admin token on /v0, API keys on /v1 (open on loopback with no keys)."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from app.core.errors import Unauthorized
from app.core.secrets import same_secret
from app.db.store import Store, matching_key
from app.server.http import Handler

log = logging.getLogger(__name__)

# Paths under /v0 that authenticate themselves (node join secret, node token).
SELF_AUTHENTICATED = {
    ("POST", "/v0/nodes"),
    ("POST", "/v0/health"),
    ("POST", "/v0/nodes/challenge"),
    ("GET", "/v0/openapi.json"),  # the API's description holds no secrets
}
# Inference outside /v1 (llama.cpp's server answers rerank there too): the /v1 policy applies.
INFERENCE_ALIASES = frozenset({"/rerank", "/reranking"})
EVENTS_PATH = "/v0/events"
# Who sent a /v1 request, for its history: the API key's name, "admin" for the admin token,
# absent while /v1 is open (no key needed, none checked).
CLIENT = web.RequestKey("client", str)
ADMIN_CLIENT = "admin"
TICKET_TTL = 30.0  # seconds a WebSocket ticket stays valid (used once)
MAX_TICKETS = 256
# A key's "last used" is kept exact in memory and written to the database at most this often
# (seconds): a busy key costs one small write a minute, not one per request.
USE_WRITE_INTERVAL = 60.0


def is_loopback(host: str) -> bool:
    """True when binding `host` keeps the server on this machine."""
    if host in {"localhost", ""}:
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer(request: web.Request) -> str | None:
    """The bearer token of the request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Auth:
    """Holds the admin token and a cache of API-key hashes (refreshed on every change)."""

    def __init__(
        self,
        admin_token: str,
        store: Store,
        loopback_only: bool,
        node_may_read: Callable[[str | None], bool] = lambda _token: False,
    ) -> None:
        self.admin_token = admin_token
        self.store = store
        self.loopback_only = loopback_only
        self._key_hashes: dict[str, str] = {}  # key hash → key id
        self._key_names: dict[str, str] = {}  # key id → its name (the history's "client")
        self._used: dict[str, float] = {}  # key id → when it was last used (wall clock)
        self._written: dict[str, float] = {}  # key id → when that was last written (monotonic)
        self._tickets: dict[str, float] = {}  # WebSocket ticket → when it expires
        # Is this X-Node-Token an approved node's (pending nodes read nothing)?
        self.node_may_read = node_may_read

    async def reload_keys(self) -> None:
        """Re-read the key hashes after a key was created or revoked."""
        self._key_hashes = await self.store.api_key_hashes()
        self._key_names = {k["id"]: k["name"] for k in await self.store.list_api_keys()}
        ids = set(self._key_hashes.values())  # revoked keys' use is forgotten: bounded
        self._used = {k: at for k, at in self._used.items() if k in ids}
        self._written = {k: at for k, at in self._written.items() if k in ids}

    def last_used(self, key_id: str) -> float | None:
        """When this key was last used by this process (newer than the database's figure)."""
        return self._used.get(key_id)

    async def _record_use(self, key_id: str) -> None:
        self._used[key_id] = time.time()
        now = time.monotonic()
        written = self._written.get(key_id)
        if written is None or now - written >= USE_WRITE_INTERVAL:
            self._written[key_id] = now
            try:
                await self.store.touch_api_key(key_id, self._used[key_id])
            except Exception:  # bookkeeping: a failed write must not fail the user's request
                log.warning("could not save when API key %s was last used", key_id, exc_info=True)

    def is_admin(self, token: str | None) -> bool:
        """Constant-time check of the admin token."""
        return same_secret(token, self.admin_token)

    def issue_ticket(self) -> str:
        """A one-time ticket that opens the events WebSocket for TICKET_TTL seconds.

        Browsers cannot set headers on a WebSocket; a short-lived ticket in the query string
        keeps the admin token itself out of URLs (and out of logs and histories).
        """
        now = time.monotonic()
        self._tickets = {t: exp for t, exp in self._tickets.items() if exp > now}
        while len(self._tickets) >= MAX_TICKETS:
            self._tickets.pop(next(iter(self._tickets)))
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = now + TICKET_TTL
        return ticket

    def _take_ticket(self, ticket: str | None) -> bool:
        if not ticket:
            return False
        expires = self._tickets.pop(ticket, None)
        return expires is not None and expires > time.monotonic()

    def require_admin(self, request: web.Request) -> None:
        """Raise 401 unless the request carries the admin token (in its header, never a URL)."""
        if request.method == "GET" and request.path == EVENTS_PATH and "ticket" in request.query:
            if self._take_ticket(request.query.get("ticket")):
                return
            raise Unauthorized("the events ticket is unknown or expired; ask for a new one")
        if not self.is_admin(bearer(request)):
            raise Unauthorized(
                "this management endpoint needs the admin token: "
                "send 'Authorization: Bearer <token>' (see the data dir's admin_token file)"
            )

    def check_inference(self, request: web.Request) -> str | None:
        """/v1 policy: open on loopback while no key exists; else a key (or admin) is needed.

        Returns the id of the API key the request used, if it used one; notes who sent it
        (`CLIENT`)."""
        if self.loopback_only and not self._key_hashes:
            return None
        # Anthropic's clients send their key as `x-api-key`.
        token = bearer(request) or request.headers.get("x-api-key", "").strip()
        if token:
            if self.is_admin(token):
                request[CLIENT] = ADMIN_CLIENT
                return None
            key_id = matching_key(token, self._key_hashes)
            if key_id is not None:
                request[CLIENT] = self._key_names.get(key_id, key_id)
                return key_id
            raise Unauthorized("the API key is not valid (revoked, or mistyped)")
        raise Unauthorized(
            "an API key is required: send 'Authorization: Bearer <key>' (or 'x-api-key') "
            "(create keys in Settings or with POST /v0/api-keys)"
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Apply the policy by path prefix."""
        path = request.path
        if path.startswith("/v1/") or path == "/v1" or path in INFERENCE_ALIASES:
            key_id = self.check_inference(request)
            if key_id is not None:
                await self._record_use(key_id)
        elif path == "/metrics" and not self.loopback_only:
            self.require_admin(request)  # on the LAN, only the admin's scraper reads them
        elif path.startswith("/v0/") and (request.method, path) not in SELF_AUTHENTICATED:
            if not (
                _node_readable(request) and self.node_may_read(request.headers.get("X-Node-Token"))
            ):
                self.require_admin(request)
        return await handler(request)


def _node_readable(request: web.Request) -> bool:
    """What an approved node may read with its own token: the model list and manifests."""
    return request.method == "GET" and (
        request.path == "/v0/models" or request.path.startswith("/v0/models/registry/")
    )
