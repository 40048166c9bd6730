"""What inference needs from a node: a loaded runner for a model it holds, or why not.

The one port between the node's inference (`app.node.inference`) and the rest of the node:
inference sees this, never the agent, so both of its adapters (the node's HTTP app and the
in-process one the composition root gives the balancer) share one typed interface.
"""

from __future__ import annotations

from pathlib import Path

from app.core.errors import BadRequest, NotFound, Unavailable
from app.core.types import ModelState
from app.node.engine.pool import EngineManager, Runner
from app.node.engine.types import EngineError, OutOfMemory
from app.node.engine.vision import find_projector
from app.node.library import ModelLibrary
from app.node.sync import SyncWorker


class NodeModels:
    """The models this node holds, as inference asks for them (built by the agent)."""

    def __init__(self, sync: SyncWorker, library: ModelLibrary, engines: EngineManager) -> None:
        self._sync = sync
        self._library = library
        self._engines = engines

    def ready(self) -> list[str]:
        """The names of the models this node can run now."""
        return [
            name for name, state in self._sync.states.items() if state.state == ModelState.READY
        ]

    async def runner_for(self, model: str, embedding: bool = False) -> Runner:
        """A loaded runner for `model`.

        Raises NotFound (not on this node), Unavailable (failed, or still downloading),
        BadRequest (an embedding model asked to generate, or the other way round), or
        OutOfMemory (it does not fit now: tried again next time) or EngineError (it
        failed to load: the model is marked failed)."""
        state = self._sync.states.get(model)
        # Only a name the node holds reaches the disk (a request's name may be anything).
        path = self._library.model_path(model) if state is not None else None
        if state is None or (path is None and state.state != ModelState.DOWNLOADING):
            raise NotFound(
                f"the model '{model}' is not on this node", code="model_not_found", param="model"
            )
        if state.state == ModelState.ERROR:
            raise Unavailable(
                f"the model '{model}' cannot run here: {state.error}", code="model_error"
            )
        if (
            path is None or state.state != ModelState.READY
        ):  # not ready: its files are fetched or checked
            percent = 100.0 * state.downloaded_bytes / state.total_bytes if state.total_bytes else 0
            raise Unavailable(
                f"the model '{model}' is still downloading ({percent:.0f}%)",
                code="model_downloading",
            )
        manifest = self._library.manifest(model)
        is_embedding = manifest is not None and "Embedding" in manifest.capabilities
        if embedding and not is_embedding:
            raise BadRequest(
                f"the model '{model}' is not an embedding model",
                param="model",
                code="model_not_embedding",
            )
        if not embedding and is_embedding:
            raise BadRequest(
                f"the model '{model}' only computes embeddings",
                param="model",
                code="model_not_generative",
            )
        # The model's own GPU layers (None: the node's setting); a changed value makes a new
        # runner, so the model loads again with it.
        gpu_layers = manifest.gpu_layers if manifest is not None else None
        context_size = manifest.context_size if manifest is not None else None
        runner = self._engines.get(
            model, path, is_embedding, gpu_layers=gpu_layers, context_size=context_size
        )
        try:
            await runner.load()
        except OutOfMemory:
            raise  # memory may be free on the next request: the model is not marked failed
        except EngineError as exc:
            self._sync.mark_error(model, exc.message)
            raise
        return runner

    def projector(self, model: str) -> Path | None:
        """The image projector among a complete model's files (None: the model is text only)."""
        manifest = self._library.manifest(model)
        if manifest is None:
            return None
        folder = self._library.folder(model)
        return find_projector([folder / f.name for f in manifest.files[1:]])
