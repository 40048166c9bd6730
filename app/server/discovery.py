"""The balancer on the LAN: advertises `_llmlb._tcp` and lists the nodes that advertise."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from app import __version__
from app.core.mdns import BALANCER_SERVICE, NODE_SERVICE, interfaces, service_info

log = logging.getLogger(__name__)


class Discovery:
    """Started only when the user serves on the LAN."""

    def __init__(self) -> None:
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._browser: AsyncServiceBrowser | None = None
        self.nodes: dict[str, dict[str, Any]] = {}  # discovered node services by name
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        """Whether we advertise and browse."""
        return self._zc is not None

    async def start(self, address: str, port: int) -> None:
        """Advertise the balancer at address:port and browse for nodes."""
        self._zc = AsyncZeroconf(interfaces=interfaces(), ip_version=IPVersion.V4Only)
        self._info = service_info(
            BALANCER_SERVICE, "balancer", address, port, {"version": __version__}
        )
        await self._zc.async_register_service(self._info)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [NODE_SERVICE], handlers=[self._on_change]
        )
        log.info("advertising the balancer on the LAN at %s:%s", address, port)

    def _on_change(
        self, zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self.nodes.pop(name, None)
            return
        task = asyncio.ensure_future(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        addresses = info.parsed_addresses(IPVersion.V4Only)
        props = {
            k.decode(): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (info.properties or {}).items()
        }
        self.nodes[name] = {
            "name": name.removesuffix("." + NODE_SERVICE),
            "url": f"http://{addresses[0]}:{info.port}" if addresses else None,
            "version": props.get("version"),
            "gpu": props.get("gpu"),
            "models": [m for m in (props.get("models") or "").split(",") if m],
            "seen_at": time.time(),
        }

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
