"""A node finds a balancer on the LAN (mDNS) and announces itself there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from app import __version__
from app.core.mdns import BALANCER_SERVICE, NODE_SERVICE, interfaces, service_info
from app.node.balancer_client import BalancerClient, BalancerNotTrusted, BalancerUnavailable

log = logging.getLogger(__name__)


RETRY_UNREACHABLE = 5.0  # seconds before a balancer that did not answer is asked again


async def find_balancer(join_token: str, fingerprint: str | None = None) -> str:
    """The URL of the first balancer on the LAN that proves it knows the join token.

    Waits until one does. Anyone on the LAN can announce `_llmlb._tcp`: a balancer that
    cannot prove it knows the token (`POST /v0/nodes/challenge`) is skipped with a warning,
    and the next one that answers is tried; the token itself is never sent here. With
    `fingerprint` (a pinned certificate) only a balancer serving that certificate over
    HTTPS counts.
    """
    async with BalancerBrowser() as browser:
        while True:
            url = await browser.next()
            client = BalancerClient(url, fingerprint=fingerprint)
            try:
                await client.prove(join_token, bound=True)
            except BalancerNotTrusted as exc:
                log.warning("ignoring the balancer announced at %s: %s", url, exc)
                continue
            except BalancerUnavailable as exc:
                log.info("the balancer at %s did not answer (%s); asking again later", url, exc)
                browser.again(url, RETRY_UNREACHABLE)
                continue
            finally:
                await client.close()
            log.info("the balancer at %s proved it knows the join token", url)
            return url


class BalancerBrowser:
    """Browses `_llmlb._tcp` and hands out each balancer URL it resolves, once (until `again`)."""

    def __init__(self) -> None:
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._found: asyncio.Queue[str] = asyncio.Queue()
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> BalancerBrowser:
        self._zc = AsyncZeroconf(interfaces=interfaces(), ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [BALANCER_SERVICE], handlers=[self._on_change]
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_close()

    async def next(self) -> str:
        """The next balancer URL not handed out before (waits until one answers)."""
        return await self._found.get()

    def again(self, url: str, delay: float) -> None:
        """Hand `url` out once more after `delay` seconds (it did not answer this time)."""
        self._spawn(self._later(url, delay))

    async def _later(self, url: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._found.put_nowait(url)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_change(
        self, zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            self._spawn(self._resolve(service_type, name))

    async def _resolve(self, service_type: str, name: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(service_type, name)
        if await info.async_request(self._zc.zeroconf, 3000):
            addresses = info.parsed_addresses(IPVersion.V4Only)
            if addresses and info.port:
                tls = (info.properties or {}).get(b"tls") == b"1"
                url = f"{'https' if tls else 'http'}://{addresses[0]}:{info.port}"
                if url not in self._seen:
                    self._seen.add(url)
                    log.info("found a balancer at %s (%s)", url, name)
                    self._found.put_nowait(url)


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
