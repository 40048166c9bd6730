"""The runner pool: a node's models, each loaded on first use and unloaded after an idle TTL."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

from app.core.tasks import TaskSupervisor
from app.node.engine.batched import BatchedRunner
from app.node.engine.sequential import ModelRunner
from app.node.engine.types import EngineOptions

Runner = ModelRunner | BatchedRunner

log = logging.getLogger(__name__)


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
