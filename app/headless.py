"""The headless modes (`llmlb serve`, `llmlb node`): one loop, started and stopped on
signals, with no Qt imported."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from app import __version__
from app.core.logs import setup_logging
from app.core.settings import DEFAULT_NODE_PORT, Settings

log = logging.getLogger("llmlb")


def settle_heap() -> None:
    """Once started: what start-up built lives as long as the process, out of the cyclic
    collector's sight (a full pass walked every module and table object: ~100 ms stalls at
    p99 under load on bench/proxy.py), and young collections 10,000 allocations apart instead
    of 700 (reference counting frees a request's objects; at 700 the collector ran ~130
    times a second under load, 5-6 % of the balancer's CPU, for nothing collected)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run_headless(main: Coroutine[Any, Any, int]) -> int:
    """Run a headless mode on uvloop where it is installed, else on asyncio's own loop.

    uvloop's event loop costs less per wake-up and per socket write; while llama.cpp keeps
    every core busy, that is about 4 % more streamed tokens/s (bench/node.py). (The GUI's loop
    is qasync's and cannot be uvloop.)"""
    try:
        import uvloop
    except ImportError:  # Windows, or a build without it
        return asyncio.run(main)
    return uvloop.run(main)


class Runnable(Protocol):
    """What a headless mode runs: AppContext or NodeContext."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def until_stopped(
    ctx: Runnable, started: Callable[[], None], before: Callable[[], None] = lambda: None
) -> int:
    """Start `ctx`, call `started`, run until SIGINT/SIGTERM, stop; a signal during the start
    (a node still looking for its balancer) ends it too. `before` runs once the signals are
    ours: what it prints invites a signal, which must not kill the process half-way."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    before()
    starting = asyncio.ensure_future(ctx.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()  # the context undoes what it started
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 0
        starting.result()  # a StartupError surfaces here
        started()
        settle_heap()
        await stopping
    finally:
        stopping.cancel()
        log.info("stopping")
        await ctx.stop()
    return 0


async def serve(settings: Settings) -> int:
    from app.context import AppContext

    setup_logging(settings.data_dir if settings.data_dir.is_dir() else None)
    ctx = AppContext(settings)

    def started() -> None:
        setup_logging(settings.data_dir.expanduser().resolve())
        if ctx.admin_token_created:
            print(
                f"llmlb: new admin token (saved in {settings.data_dir / 'admin_token'}): "
                f"{ctx.admin_token}",
                file=sys.stderr,
            )
        print(
            f"llmlb {__version__}: OpenAI endpoint {ctx.base_url}/v1", file=sys.stderr, flush=True
        )
        if ctx.certificate is not None:
            print(
                f"llmlb: TLS certificate {ctx.certificate.cert_path} (sha256 "
                f"{ctx.certificate.fingerprint})",
                file=sys.stderr,
                flush=True,
            )

    return await until_stopped(ctx, started)


async def node(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.instance import DataDirLock
    from app.core.paths import ensure_data_dir
    from app.node_context import NodeContext, NodeOptions

    ctx = NodeContext(
        settings,
        NodeOptions(
            balancer_url=args.balancer or None,
            host=args.host,
            port=DEFAULT_NODE_PORT if args.port is None else args.port,
            name=args.name or "",
        ),
    )
    # A node keeps its identity in the data folder: with a balancer (or another node) running
    # on the same folder it would register as that one's node.
    lock = DataDirLock(ensure_data_dir(settings.data_dir))
    lock.acquire()
    setup_logging(ensure_data_dir(settings.data_dir))

    def before() -> None:
        if not ctx.balancer_url:
            print("llmlb: looking for a balancer on the LAN (mDNS)…", file=sys.stderr, flush=True)

    def started() -> None:
        print(
            f"llmlb node {__version__}: serving at {ctx.url}, balancer {ctx.balancer_url}",
            file=sys.stderr,
            flush=True,
        )

    try:
        return await until_stopped(ctx, started, before)
    finally:
        lock.release()
