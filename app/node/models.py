"""What inference needs from a node: a loaded runner for a model it holds, or why not.

The one port between the node's inference (`app.node.inference`) and the rest of the node:
inference sees this, never the agent, so both of its adapters (the node's HTTP app and the
in-process one the composition root gives the balancer) share one typed interface.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from app.core.errors import BadRequest, NotFound, Unavailable
from app.core.settings import DEFAULT_QUEUE_WAIT
from app.core.types import ModelState
from app.node.engine.pool import EngineManager, Runner
from app.node.engine.types import EngineError, OutOfMemory
from app.node.engine.vision import find_projector
from app.node.library import ModelLibrary
from app.node.sync import SyncWorker

log = logging.getLogger(__name__)
BUSY_POLL = 0.1  # seconds between looks at whether a busy model has finished its answers


class NodeModels:
    """The models this node holds, as inference asks for them (built by the agent)."""

    def __init__(
        self,
        sync: SyncWorker,
        library: ModelLibrary,
        engines: EngineManager,
        queue_wait: float = DEFAULT_QUEUE_WAIT,
    ) -> None:
        self._sync = sync
        self._library = library
        self._engines = engines
        # How long a load waits for busy models to finish before it gives up for lack of memory.
        self.queue_wait = queue_wait
        # One load decision at a time: two big models must not unload each other in turn.
        self._loading = asyncio.Lock()

    def retry(self, model: str) -> bool:
        """Try a model in error again (the Retry button); False when it is not in error here."""
        return self._sync.retry(model)

    def ready(self) -> list[str]:
        """The names of the models this node can run now."""
        return [
            name for name, state in self._sync.states.items() if state.state == ModelState.READY
        ]

    async def runner_for(self, model: str, embedding: bool = False, rerank: bool = False) -> Runner:
        """A loaded runner for `model`: to generate, to embed (`embedding`) or to score
        documents (`rerank`); embedding and reranking models run loaded for embeddings.

        Raises NotFound (not on this node), Unavailable (failed, or still downloading),
        BadRequest (a model asked for what its capabilities do not include), or
        OutOfMemory (it does not fit now, even with the idle models unloaded: tried again
        next time) or EngineError (it failed to load: the model is marked failed, and its
        next request tries again)."""
        state = self._sync.states.get(model)
        # Only a name the node holds reaches the disk (a request's name may be anything).
        path = self._library.model_path(model) if state is not None else None
        if state is None:
            raise NotFound(
                f"the model '{model}' is not on this node", code="model_not_found", param="model"
            )
        # A model whose complete files failed to load is tried again (the file may be fixed,
        # or its settings); one whose download failed waits for its Retry.
        retrying = (
            state.state == ModelState.ERROR and model in self._sync.load_failed and path is not None
        )
        if state.state == ModelState.ERROR and not retrying:
            raise Unavailable(
                f"the model '{model}' cannot run here: {state.error} (Retry it in the Model "
                f"Hub, or POST /v0/models/{model}/retry)",
                code="model_error",
            )
        if path is None and state.state != ModelState.DOWNLOADING:
            raise NotFound(
                f"the model '{model}' is not on this node", code="model_not_found", param="model"
            )
        if path is None or not (state.state == ModelState.READY or retrying):
            # not ready: its files are fetched or checked
            percent = 100.0 * state.downloaded_bytes / state.total_bytes if state.total_bytes else 0
            raise Unavailable(
                f"the model '{model}' is still downloading ({percent:.0f}%)",
                code="model_downloading",
            )
        manifest = self._library.manifest(model)
        capabilities = manifest.capabilities if manifest is not None else ()
        is_embedding = "Embedding" in capabilities
        is_reranker = "Reranking" in capabilities
        if embedding and not is_embedding:
            raise BadRequest(
                f"the model '{model}' is not an embedding model",
                param="model",
                code="model_not_embedding",
            )
        if rerank and not is_reranker:
            raise BadRequest(
                f"the model '{model}' does not rerank (it has no Reranking capability: its "
                "GGUF's pooling type is not rank); pick a reranking model",
                param="model",
                code="model_not_reranker",
            )
        if not (embedding or rerank) and (is_embedding or is_reranker):
            raise BadRequest(
                f"the model '{model}' only computes "
                + ("embeddings" if is_embedding else "relevance scores (POST /v1/rerank)"),
                param="model",
                code="model_not_generative",
            )
        is_embedding = is_embedding or is_reranker  # both load for pooled outputs
        # The model's own GPU layers (None: the node's setting); a changed value makes a new
        # runner, so the model loads again with it.
        gpu_layers = manifest.gpu_layers if manifest is not None else None
        context_size = manifest.context_size if manifest is not None else None

        def runner_now() -> Runner:
            return self._engines.get(
                model, path, is_embedding, gpu_layers=gpu_layers, context_size=context_size
            )

        runner = runner_now()
        if not runner.loaded:
            async with self._loading:
                runner = runner_now()  # again: the settings may have changed while it waited
                await self._load(model, path, runner)
        if retrying:
            self._sync.mark_ready(model)
        # Handed to a request: not unloaded for another model before its stream starts.
        runner.last_used = time.monotonic()
        return runner

    def projector(self, model: str) -> Path | None:
        """The image projector among a complete model's files (None: the model is text only)."""
        manifest = self._library.manifest(model)
        if manifest is None:
            return None
        folder = self._library.folder(model)
        return find_projector([folder / f.name for f in manifest.files[1:]])

    async def _load(self, model: str, path: Path, runner: Runner) -> None:
        """Load `runner`, unloading the least recently used idle models while memory is short;
        while only busy models hold it, wait (up to `queue_wait`) for one to finish."""
        deadline = time.monotonic() + self.queue_wait
        while True:
            self._engines.budget_for(model, path)
            try:
                await runner.load()
                return
            except OutOfMemory as exc:
                # Memory may be free on the next request: the model is not marked failed.
                if await self._engines.unload_idle_lru(model) is not None:
                    continue
                busy = self._engines.busy_besides(model)
                if not busy:
                    raise  # nothing else holds memory: it does not fit this node
                if time.monotonic() >= deadline:
                    raise OutOfMemory(
                        f"{exc.message}; waited {self.queue_wait:g} s for "
                        f"{', '.join(busy)} to finish answering so it could be unloaded"
                    ) from exc
                log.info("%s waits for %s to finish to have room", model, ", ".join(busy))
                await self._idle_one(model, deadline)
            except EngineError as exc:
                self._sync.mark_error(model, exc.message)
                raise

    async def _idle_one(self, model: str, deadline: float) -> None:
        """Wait until some other loaded model has finished its answers, or the deadline."""
        while time.monotonic() < deadline:
            busy = self._engines.busy_besides(model)
            loaded = [n for n in self._engines.loaded() if n != model]
            if len(busy) < len(loaded) or not busy:
                return
            await asyncio.sleep(BUSY_POLL)
