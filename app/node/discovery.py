"""A node finds a balancer on the LAN (mDNS) and announces itself there."""

from __future__ import annotations

import asyncio
import logging

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from app import __version__
from app.core.mdns import BALANCER_SERVICE, NODE_SERVICE, interfaces, service_info

log = logging.getLogger(__name__)


async def find_balancer() -> str:
    """The URL of the first balancer that answers on the LAN (waits until one does)."""
    zc = AsyncZeroconf(interfaces=interfaces(), ip_version=IPVersion.V4Only)
    found: asyncio.Queue[str] = asyncio.Queue()
    pending: set[asyncio.Task[None]] = set()

    def on_change(
        zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            task = asyncio.ensure_future(_resolve(zc, service_type, name, found))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(zc.zeroconf, [BALANCER_SERVICE], handlers=[on_change])
    try:
        return await found.get()
    finally:
        for task in list(pending):
            task.cancel()
        await browser.async_cancel()
        await zc.async_close()


async def _resolve(
    zc: AsyncZeroconf, service_type: str, name: str, found: asyncio.Queue[str]
) -> None:
    info = AsyncServiceInfo(service_type, name)
    if await info.async_request(zc.zeroconf, 3000):
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if addresses and info.port:
            url = f"http://{addresses[0]}:{info.port}"
            log.info("found a balancer at %s (%s)", url, name)
            found.put_nowait(url)


class NodeAnnouncer:
    """Advertises this node (`_llmlb-node._tcp`) with its version, GPU and models."""

    def __init__(self) -> None:
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    async def start(self, address: str, port: int, models: list[str], gpu: str = "") -> None:
        """Register the service."""
        self._zc = AsyncZeroconf(interfaces=interfaces(), ip_version=IPVersion.V4Only)
        self._info = service_info(
            NODE_SERVICE,
            "node",
            address,
            port,
            {"version": __version__, "gpu": gpu or "none", "models": ",".join(models)[:200]},
        )
        await self._zc.async_register_service(self._info)

    async def stop(self) -> None:
        """Withdraw the service."""
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()
            self._zc = None
