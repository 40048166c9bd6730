"""The balancer on the LAN: advertises `_llmlb._tcp` and lists the nodes that advertise."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from app import __version__
from app.core.mdns import BALANCER_SERVICE, NODE_SERVICE, interfaces, service_info
from app.core.wire import DiscoveredNode
from app.server.heartbeat import LIST_LIMIT, MODEL_NAME_LIMIT, clean_text, node_name

log = logging.getLogger(__name__)
MAX_DISCOVERED = 64  # anyone on the LAN can advertise: keep the newest this many


class Discovery:
    """Started only when the user serves on the LAN."""

    def __init__(self, limit: int = MAX_DISCOVERED) -> None:
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._browser: AsyncServiceBrowser | None = None
        self.limit = limit
        # Discovered node services by name, the least recently seen first.
        self.nodes: OrderedDict[str, DiscoveredNode] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.url: str | None = None  # the root URL we announce, while we do

    @property
    def running(self) -> bool:
        """Whether we advertise and browse."""
        return self._zc is not None

    async def start(self, address: str, port: int, tls: bool = False) -> None:
        """Advertise the balancer at address:port (`tls=1`: over HTTPS) and browse for nodes."""
        self._zc = AsyncZeroconf(interfaces=interfaces(), ip_version=IPVersion.V4Only)
        properties = {"version": __version__}
        if tls:
            properties["tls"] = "1"
        self._info = service_info(BALANCER_SERVICE, "balancer", address, port, properties)
        await self._zc.async_register_service(self._info)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [NODE_SERVICE], handlers=[self._on_change]
        )
        self.url = f"{'https' if tls else 'http'}://{address}:{port}"
        log.info("advertising the balancer on the LAN at %s:%s", address, port)

    def _on_change(
        self, zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self.nodes.pop(name, None)
            return
        if len(self._tasks) >= self.limit:
            return  # a flood of announcements: it will be seen when it announces again
        task = asyncio.ensure_future(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        addresses = info.parsed_addresses(IPVersion.V4Only)
        self.add(name, addresses[0] if addresses else None, info.port, info.properties or {})

    def add(
        self,
        name: str,
        address: str | None,
        port: int | None,
        properties: Mapping[bytes, bytes | None],
    ) -> None:
        """Keep one advertised node, its fields cleaned; the oldest go beyond the limit."""
        props = {_text(k): _text(v) for k, v in list(properties.items())[:32]}
        models = (props.get("models") or "").split(",")[:LIST_LIMIT]
        self.nodes[name] = {
            "name": node_name(name.removesuffix("." + NODE_SERVICE)),
            "url": f"http://{address}:{port}" if address and port else None,
            "version": clean_text(props.get("version"), 64),
            "gpu": clean_text(props.get("gpu"), 200),
            "models": [m for m in (clean_text(m, MODEL_NAME_LIMIT) for m in models) if m],
            "seen_at": time.time(),
        }
        self.nodes.move_to_end(name)
        while len(self.nodes) > self.limit:
            self.nodes.popitem(last=False)

    async def stop(self) -> None:
        """Withdraw and stop browsing."""
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()
            self._zc = None
        self.url = None


def _text(value: object) -> str | None:
    """A TXT record key or value as text (bytes may be any bytes at all)."""
    if isinstance(value, bytes):
        return value[:1024].decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None
