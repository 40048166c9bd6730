"""Hugging Face downloads/likes, fetched in the background and cached; no request waits."""

from __future__ import annotations

import asyncio
import logging
import time

from app.core.errors import UpstreamError
from app.core.hf import HfClient
from app.core.tasks import TaskSupervisor
from app.core.wire import HfInfo

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 60.0  # seconds before asking an unreachable Hub again


class HubInfoCache:
    """Last known popularity per repo, valid for `ttl` seconds (stale-while-revalidate)."""

    def __init__(self, hf: HfClient, ttl: float, supervisor: TaskSupervisor) -> None:
        self.hf = hf
        self.ttl = ttl
        self.supervisor = supervisor
        self._info: dict[str, tuple[int | None, int | None, float]] = {}
        self._next_attempt = 0.0
        self._task: asyncio.Task[None] | None = None

    def get(self, repo: str) -> HfInfo | None:
        """{downloads, likes} when fetched within the TTL, else None."""
        entry = self._info.get(repo)
        if entry is None or time.monotonic() - entry[2] > self.ttl:
            return None
        return {"downloads": entry[0], "likes": entry[1]}

    def request_refresh(self, repos: list[str]) -> None:
        """Start one background refresh when the cache is due; return at once."""
        now = time.monotonic()
        if now < self._next_attempt or (self._task is not None and not self._task.done()):
            return
        self._next_attempt = now + self.ttl
        self._task = self.supervisor.spawn(self._refresh(list(dict.fromkeys(repos))), "hub-info")

    async def _refresh(self, repos: list[str]) -> None:
        gate = asyncio.Semaphore(4)
        failed = asyncio.Event()

        async def one(repo: str) -> None:
            async with gate:
                if failed.is_set():
                    return
                try:
                    downloads, likes = await self.hf.popularity(repo)
                except UpstreamError as exc:
                    # The Hub is down or hanging: stop asking for the rest, try again later.
                    if not failed.is_set():
                        log.info("Hugging Face info unavailable: %s", exc.message)
                    failed.set()
                    return
                except Exception as exc:  # one odd repo must not spoil the others
                    log.debug("no Hugging Face info for %s: %s", repo, exc)
                    return
                self._info[repo] = (downloads, likes, time.monotonic())

        await asyncio.gather(*(one(r) for r in repos))
        if failed.is_set():
            self._next_attempt = time.monotonic() + min(self.ttl, RETRY_AFTER_FAILURE)
