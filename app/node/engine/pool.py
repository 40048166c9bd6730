"""The runner pool: a node's models, each loaded on first use and unloaded after an idle TTL."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

from app.core.tasks import TaskSupervisor
from app.node.engine.batched import BatchedRunner
from app.node.engine.llama import set_memory_budget
from app.node.engine.sequential import ModelRunner
from app.node.engine.types import EngineOptions

Runner = ModelRunner | BatchedRunner

log = logging.getLogger(__name__)
# A model just handed to a request counts as busy this long: its prompt is rendered on it
# before its stream starts (and counts as active), so it must not be unloaded meanwhile.
HANDOFF_GRACE = 1.0


class EngineManager:
    """One runner per model name: batched for generation, one-at-a-time for embeddings."""

    def __init__(self, options: EngineOptions, idle_ttl: float, supervisor: TaskSupervisor) -> None:
        self.options = options
        self.idle_ttl = idle_ttl
        self.runners: dict[str, Runner] = {}
        self._supervisor = supervisor

    def start(self) -> None:
        """Start the idle reaper."""
        self._supervisor.spawn(self._reap(), "idle-unload")

    def get(
        self,
        name: str,
        path: Path,
        embedding: bool,
        gpu_layers: int | None = None,
        context_size: int | None = None,
    ) -> Runner:
        """The runner for a model (created, not yet loaded, on first use): generation runs on
        the batched engine (`slots` sequences per decode step), embeddings on their own.
        `gpu_layers` and `context_size` are the model's own settings (None: the node's); a
        changed one makes a new runner, so the model loads again with it on this use."""
        runner = self.runners.get(name)
        layers = self.options.n_gpu_layers if gpu_layers is None else gpu_layers
        o = replace(self.options, n_gpu_layers=layers, n_ctx=context_size or self.options.n_ctx)
        one_at_a_time = embedding or o.slots <= 0  # LLMLB_SLOTS=0: the plain llama-cpp path
        if (
            runner is None
            or runner.path != path
            or isinstance(runner, ModelRunner) != one_at_a_time
            or runner.embedding != embedding
            or runner.n_gpu_layers != layers
            or runner.asked_ctx != (o.n_ctx or None)
        ):
            runner = (
                ModelRunner(name, path, o, embedding=embedding)
                if one_at_a_time
                else BatchedRunner(
                    name,
                    path,
                    n_slots=o.slots,
                    ctx_per_slot=o.n_ctx,
                    n_threads=o.n_threads,
                    n_gpu_layers=o.n_gpu_layers,
                    flash_attn=o.flash_attn,
                    stream_interval=o.stream_interval,
                )
            )
            old = self.runners.get(name)
            self.runners[name] = runner
            if old is not None:
                self._supervisor.spawn(old.close(), f"close-{name}")
        return runner

    async def drop(self, name: str) -> None:
        """Unload and forget a model (its files are about to be deleted)."""
        runner = self.runners.pop(name, None)
        if runner is not None:
            await runner.close()

    def budget_for(self, name: str, path: Path) -> None:
        """Before loading `name`: cap its load at the node's model memory (LLMLB_MODEL_MEMORY)
        less what the other loaded models hold; no cap when the node sets none."""
        limit = self.options.memory_limit
        if limit is None:
            set_memory_budget(path, None)
            return
        held = sum(
            r.placement.cpu_bytes
            for n, r in self.runners.items()
            if n != name and r.loaded and r.placement is not None
        )
        set_memory_budget(path, limit - held)

    async def unload_idle_lru(self, except_name: str) -> str | None:
        """Unload the least recently used loaded model with nothing running or waiting (never
        `except_name`) to make room; its name, or None when no other model is loaded and idle."""
        now = time.monotonic()
        idle = [
            r
            for n, r in self.runners.items()
            if n != except_name and r.loaded and not _busy(r, now)
        ]
        if not idle:
            return None
        lru = min(idle, key=lambda r: r.last_used)
        log.info("unloading %s (least recently used) to make room for %s", lru.name, except_name)
        await lru.unload()
        return lru.name

    def busy_besides(self, name: str) -> list[str]:
        """Loaded models other than `name` with a request running, waiting or just begun."""
        now = time.monotonic()
        return [n for n, r in self.runners.items() if n != name and r.loaded and _busy(r, now)]

    def loaded(self) -> list[str]:
        """Names of the models in memory."""
        return [n for n, r in self.runners.items() if r.loaded]

    def free_slots(self) -> int:
        """Slots free in the least busy loaded model (all of them when none is loaded)."""
        free = [
            r.free_slots for r in self.runners.values() if isinstance(r, BatchedRunner) and r.loaded
        ]
        return max(free) if free else self.options.slots

    def active_requests(self) -> int:
        """Requests waiting or running on any model."""
        return sum(r.active for r in self.runners.values())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(0.05, self.idle_ttl / 4)))
            now = time.monotonic()
            for runner in list(self.runners.values()):
                if runner.loaded and runner.active == 0 and now - runner.last_used > self.idle_ttl:
                    log.info("unloading %s after %.0f s idle", runner.name, now - runner.last_used)
                    await runner.unload()

    async def close(self) -> None:
        """Unload everything."""
        for name in list(self.runners):
            await self.drop(name)


def _busy(runner: Runner, now: float) -> bool:
    """A request runs or waits on the runner, or it was just handed to one."""
    return runner.active > 0 or now - runner.last_used < HANDOFF_GRACE
