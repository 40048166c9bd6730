"""Limits on joining the cluster: failed join attempts per client address, pending nodes."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

from app.core.errors import Conflict, TooManyRequests

FAILED_JOINS = 10  # wrong join tokens one address may send...
FAILED_WINDOW = 60.0  # ...in this many seconds
CLIENTS_KEPT = 4096  # addresses remembered (the least recent are forgotten first)
MAX_PENDING = 32  # nodes waiting for approval at once
PENDING_TTL = 24 * 3600.0  # a never-approved node silent this long is dropped


class JoinRateLimited(TooManyRequests):
    """Too many wrong join tokens from one address."""


class TooManyPending(Conflict):
    """The cluster already has as many nodes waiting for approval as it keeps."""

    code = "too_many_pending_nodes"


class JoinLimiter:
    """Counts failed join attempts per client address in a sliding window."""

    def __init__(
        self,
        limit: int = FAILED_JOINS,
        window: float = FAILED_WINDOW,
        clients: int = CLIENTS_KEPT,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clients = clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str) -> None:
        """Raise 429 (with Retry-After) while `client` is over the limit."""
        failures = self._recent(client, time.monotonic())
        if failures is not None and len(failures) >= self.limit:
            retry = max(1, math.ceil(failures[0] + self.window - time.monotonic()))
            raise JoinRateLimited(
                f"too many failed join attempts from this address; try again in {retry} s "
                "with the cluster's join token",
                headers={"Retry-After": str(retry)},
            )

    def failed(self, client: str) -> None:
        """Record one failed attempt."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if failures is None:
            failures = self._failures[client] = deque(maxlen=self.limit)
        failures.append(now)
        self._failures.move_to_end(client)
        while len(self._failures) > self.clients:
            self._failures.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures
