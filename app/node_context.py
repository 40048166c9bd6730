"""The composition root of `llmlb node`: finds its balancer, runs the node, announces it."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.errors import StartupError
from app.core.mdns import MDNS_GROUP, address_towards
from app.core.paths import ensure_data_dir
from app.core.settings import DEFAULT_NODE_HOST, DEFAULT_NODE_PORT, Settings
from app.core.tls import normalize_fingerprint
from app.node.agent import NodeAgent, node_config, saved_pin
from app.node.discovery import NodeAnnouncer, find_balancer

log = logging.getLogger(__name__)
NODE_DIR = "node"  # a node keeps its identity and models in this folder of the data dir
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class NodeOptions:
    """What `llmlb node` is told besides the shared settings (its command line)."""

    balancer_url: str | None = None  # None: the first balancer on the LAN proving the token
    host: str = DEFAULT_NODE_HOST
    port: int = DEFAULT_NODE_PORT
    name: str = ""  # empty: the hostname


class NodeContext:
    """One node alone on the current loop, for a balancer on another machine.

    The same shape as AppContext: `start()` raises StartupError having undone what it
    started (a cancelled start is undone too: a signal may end the search for a balancer),
    and `stop()` is safe to call twice or after a failed start.
    """

    def __init__(self, settings: Settings, options: NodeOptions) -> None:
        """Check the token and the pin up front: a user's mistake stops us before any I/O."""
        self.settings = settings
        self.options = options
        self.join_token = settings.join_token
        if not self.join_token:
            raise StartupError(
                "a node needs the cluster join token: --join-token T or "
                "LLMLB_JOIN_TOKEN (the app shows it in Settings; GET /v0/cluster)"
            )
        self.pinned: str | None = None  # the balancer's certificate, pinned ahead
        if settings.balancer_fingerprint:
            try:
                self.pinned = normalize_fingerprint(settings.balancer_fingerprint)
            except ValueError as exc:
                raise StartupError(f"--balancer-fingerprint: {exc}") from exc
        self.balancer_url = options.balancer_url or ""  # known once found, without one given
        self.agent: NodeAgent | None = None
        self.announcer = NodeAnnouncer()

    @property
    def url(self) -> str:
        """The node's own URL (empty until it listens)."""
        return self.agent.url if self.agent is not None else ""

    async def start(self) -> None:
        """Find the balancer unless given, listen, and announce the node on the LAN."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        o = self.options
        data_dir = ensure_data_dir(self.settings.data_dir) / NODE_DIR
        if not self.balancer_url:
            pin = self.pinned or saved_pin(data_dir)
            self.balancer_url = await find_balancer(self.join_token, pin)
        self.agent = NodeAgent(
            node_config(
                self.settings,
                data_dir=data_dir,
                balancer_url=self.balancer_url,
                credential=self.join_token,
                balancer_fingerprint=self.pinned,
                host=o.host,
                port=o.port,
                name=o.name,
                discovered=not o.balancer_url,
            )
        )
        try:
            await self.agent.start()
        except OSError as exc:
            raise StartupError(
                f"the node cannot listen on {o.host}:{o.port}: {exc.strerror}"
            ) from exc
        # A node bound to loopback has nobody on the LAN to tell (tests name interfaces).
        if o.host not in LOOPBACK_HOSTS or os.environ.get("LLMLB_MDNS_INTERFACES"):
            url = urlsplit(self.agent.url)
            with contextlib.suppress(OSError):
                await self.announcer.start(
                    url.hostname or address_towards(MDNS_GROUP), int(url.port or 0), []
                )

    async def stop(self) -> None:
        """Withdraw the announcement, then stop the node (partial downloads stay)."""
        await self.announcer.stop()
        if self.agent is not None:
            agent, self.agent = self.agent, None
            await agent.stop()
