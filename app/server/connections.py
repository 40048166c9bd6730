"""Connections per client, bounded: one machine on the LAN cannot hold every descriptor.

aiohttp closes a connection that sends no whole request head within its keep-alive timeout
(the header deadline, set by the composition root); this caps how many connections one
remote address may hold open at once. Loopback clients are this machine's own tools (and our
benchmarks), and are not capped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)
MAX_PER_CLIENT = 256


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class ConnectionGuard:
    """Counts open connections by remote address and refuses those over the cap."""

    def __init__(self, per_client: int = MAX_PER_CLIENT, exempt_loopback: bool = True) -> None:
        self.per_client = per_client
        self.exempt_loopback = exempt_loopback
        self.open: Counter[str] = Counter()
        self.refused = 0

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """The address to release later, or None when the connection must be refused."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not address or (self.exempt_loopback and _is_loopback(address)):
            return ""
        if self.open[address] >= self.per_client:
            self.refused += 1
            if self.refused in (1, 100) or self.refused % 10_000 == 0:
                log.warning(
                    "refused a connection from %s: it already holds %d", address, self.per_client
                )
            return None
        self.open[address] += 1
        return address

    def release(self, address: str) -> None:
        """A counted connection closed."""
        if address:
            self.open[address] -= 1
            if self.open[address] <= 0:
                del self.open[address]


class _GuardedProtocol(asyncio.Protocol):
    """Stands in front of aiohttp's protocol: admits or refuses, then forwards everything."""

    def __init__(self, inner: Any, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._address = self._guard.admit(transport)
        if self._address is None:
            transport.abort()  # type: ignore[attr-defined]  # a TCP transport has it
            return
        if not self._address:
            # Not counted (this machine's own clients): nothing to do at its end, so the
            # transport talks to aiohttp directly, without a hop through us per read.
            transport.set_protocol(self._inner)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return  # refused: aiohttp never saw it
        self._guard.release(self._address)
        self._address = None
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose sites hand every new connection to a ConnectionGuard first."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    @property
    def server(self) -> Any:
        """The protocol factory the sites listen with (aiohttp's, behind the guard)."""
        inner = super().server
        if inner is None:
            return None
        guard = self.guard
        return lambda: _GuardedProtocol(inner(), guard)
