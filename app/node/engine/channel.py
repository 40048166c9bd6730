"""Items from an engine thread to one consumer on the event loop, with as few wake-ups as can be.

An `asyncio.Queue` fed through `call_soon_threadsafe` wakes the event loop once per token. On a
machine whose cores are all decoding, every wake-up preempts a llama.cpp thread, and the whole
decode step waits for it. A `Channel` wakes the loop only when its consumer is waiting, and the
consumer takes everything queued since in one go: one token per wake-up while the loop keeps
up, several when it falls behind (many streams), never a backlog of callbacks. With an
interval, the consumer wakes at most once per interval while items keep coming (the first and
a flushed one at once), so a fast stream costs one wake-up per interval, not per token.

`item_channel` and `item_batches` carry a runner's Delta and Finished items (or the exception
that ended its work) over a channel.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

from app.node.engine.types import Delta, Finished, Item

T = TypeVar("T")

Emit = Callable[[Item | BaseException], None]
"""How an engine thread hands an item (or the exception that ended its work) to its consumer."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # the consumer may have been cancelled meanwhile
        waiter.set_result(None)


class Channel(Generic[T]):
    """A one-consumer queue from any thread to the event loop `loop`.

    With an `interval`, the consumer receives items at most once per `interval` seconds (the
    first at once, a flushed one at once): tokens reach a client in groups a few milliseconds
    apart instead of one wake-up each."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.0) -> None:
        self._loop = loop
        self._interval = interval
        self._items: deque[T] = deque()
        self._flush = False  # an item that must not wait for the interval is queued
        self._due = 0.0  # monotonic time from which the next delivery may happen
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T, flush: bool = False) -> None:
        """Queue `item` (any thread); `flush`: deliver it, and all before it, without waiting
        for the interval. RuntimeError when the consumer's loop is closed."""
        with self._lock:
            self._items.append(item)
            self._flush = self._flush or flush
            waiter = self._waiter
            if waiter is None or not (flush or time.monotonic() >= self._due):
                return  # no one waits, or the consumer's timer will come for it
            self._waiter = None
        self._loop.call_soon_threadsafe(_wake, waiter)

    async def take(self) -> list[T]:
        """Everything queued, in order; waits while nothing is, or until the interval since
        the last delivery has passed."""
        while True:
            with self._lock:
                now = time.monotonic()
                if self._items and (self._flush or now >= self._due):
                    items = list(self._items)
                    self._items.clear()
                    self._flush = False
                    self._due = now + self._interval
                    return items
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiter = waiter
                early = self._due - now
            # Wake at the due time even if no other item comes: what is queued (or comes
            # meanwhile) must not wait for the engine's next step.
            timer = self._loop.call_later(early, _wake, waiter) if early > 0 else None
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None


async def one_by_one(batches: AsyncGenerator[list[T], None]) -> AsyncGenerator[T, None]:
    """The items of `batches`, one at a time (closing `batches` when the consumer stops)."""
    try:
        async for batch in batches:
            for item in batch:
                yield item
    finally:
        await batches.aclose()


def item_channel(
    cancel: threading.Event, interval: float
) -> tuple[Channel[Item | BaseException], Emit]:
    """A channel from an engine thread to the running loop, and the engine's emit into it (if
    the consumer's loop is gone, emit sets `cancel`: generation stops).

    Text deltas reach the consumer at most once per `interval` seconds (the first at once); the
    end of a generation or an error goes at once, with everything before it."""
    channel: Channel[Item | BaseException] = Channel(asyncio.get_running_loop(), interval)

    def emit(item: Item | BaseException) -> None:
        try:
            channel.put(item, flush=not isinstance(item, Delta))
        except RuntimeError:
            cancel.set()

    return channel, emit


async def item_batches(
    channel: Channel[Item | BaseException],
) -> AsyncGenerator[list[Item], None]:
    """What an engine thread put in `channel`, a batch at a time, up to its Finished.

    Consecutive deltas in a batch (the loop fell behind the engine) become one; an exception
    put in the channel is raised after the items before it."""
    while True:
        batch: list[Item] = []
        for item in await channel.take():
            if isinstance(item, BaseException):
                if batch:
                    yield batch
                raise item
            if batch and isinstance(item, Delta) and isinstance(batch[-1], Delta):
                batch[-1] = Delta(batch[-1].text + item.text, batch[-1].logprobs + item.logprobs)
            else:
                batch.append(item)
            if isinstance(item, Finished):
                yield batch
                return
        yield batch
