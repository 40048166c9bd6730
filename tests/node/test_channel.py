"""The engine-to-loop channel: items in order, the first at once, later ones gathered."""

from __future__ import annotations

import asyncio
import threading
import time

from app.node.engine.channel import Channel


def put_from_thread(channel: Channel[int], *items: int, flush: bool = False) -> None:
    """Put items as an engine thread does (the last one flushed if asked)."""

    def run() -> None:
        for i, item in enumerate(items):
            channel.put(item, flush=flush and i == len(items) - 1)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


async def test_without_an_interval_each_put_reaches_a_waiting_consumer() -> None:
    channel: Channel[int] = Channel(asyncio.get_running_loop())
    taking = asyncio.ensure_future(channel.take())
    await asyncio.sleep(0.01)
    put_from_thread(channel, 1)
    async with asyncio.timeout(5):
        assert await taking == [1]
    put_from_thread(channel, 2, 3)
    async with asyncio.timeout(5):
        assert await channel.take() == [2, 3]


async def test_the_first_item_goes_at_once_later_ones_wait_for_the_interval_or_a_flush() -> None:
    channel: Channel[int] = Channel(asyncio.get_running_loop(), interval=60.0)
    put_from_thread(channel, 1)
    async with asyncio.timeout(5):
        assert await channel.take() == [1]  # nothing delivered before: no waiting
    put_from_thread(channel, 2, 3)
    taking = asyncio.ensure_future(channel.take())
    await asyncio.sleep(0)  # the consumer runs once: with 2 and 3 there, it waits for more
    assert not taking.done()  # they gather: the interval has not passed
    put_from_thread(channel, 4, flush=True)  # the end of an answer does not wait
    async with asyncio.timeout(5):
        assert await taking == [2, 3, 4]


async def test_gathered_items_arrive_when_the_interval_passes_even_if_nothing_follows() -> None:
    channel: Channel[int] = Channel(asyncio.get_running_loop(), interval=0.3)
    put_from_thread(channel, 1)
    assert await channel.take() == [1]
    start = time.monotonic()
    put_from_thread(channel, 2)  # then the engine is silent (a long step elsewhere)
    async with asyncio.timeout(5):
        assert await channel.take() == [2]
    assert time.monotonic() - start >= 0.2  # held for the interval, not sent at once


async def test_a_consumer_that_leaves_while_waiting_leaves_no_wake_up_behind() -> None:
    channel: Channel[int] = Channel(asyncio.get_running_loop(), interval=0.05)
    put_from_thread(channel, 1)
    assert await channel.take() == [1]
    put_from_thread(channel, 2)
    taking = asyncio.ensure_future(channel.take())  # waits for the interval, with a timer
    await asyncio.sleep(0)
    taking.cancel()
    await asyncio.gather(taking, return_exceptions=True)
    await asyncio.sleep(0.1)  # the timer, had it stayed, would fire on a cancelled future
    put_from_thread(channel, 3, flush=True)
    async with asyncio.timeout(5):
        assert await channel.take() == [2, 3]  # nothing lost
