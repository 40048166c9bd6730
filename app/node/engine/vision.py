"""Images through llama.cpp's multimodal library (libmtmd): the projector (`mmproj`) file beside
a model turns each image into embeddings in the model's own space.

A chat with images is rendered with the model's template, each image standing where the media
marker is, then `mtmd_tokenize` splits it into text and image chunks (`Media`). The batched
engine gives such a request a slot like any other; before the slot's first decode step,
`VisionMixin._prefill_media` evaluates the chunks for that slot's sequence id with
`mtmd_helper_eval_chunks` (on the scheduler thread, so no other decode runs meanwhile) and
samples the first token; from then on the sequence generates in the shared batch as usual. Its
KV cells hold images, so the slot's prompt cache is not reused by a later prompt.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llama_cpp
from llama_cpp import mtmd_cpp

from app.core.errors import BadRequest
from app.node.engine.base import check_prompt, split_prefill
from app.node.engine.gguf_header import read_header
from app.node.engine.llama import _log_callback, decode_error
from app.node.engine.sampler import logprob_at
from app.node.engine.slots import Sequence, Slots
from app.node.engine.types import EngineError, Logprob

log = logging.getLogger(__name__)

MARKER = "<__media__>"  # where an image goes in the rendered prompt (libmtmd's default)
MAX_IMAGES = 16  # per request: each costs an encoder pass and hundreds of tokens


class Media:
    """A prompt with images, tokenized by libmtmd into chunks (freed once evaluated)."""

    def __init__(self, chunks: Any, n_tokens: int) -> None:
        self.chunks = chunks  # mtmd_input_chunks_p, owned
        self.n_tokens = n_tokens  # text tokens plus image tokens: what the prompt costs

    def close(self) -> None:
        """Free the chunks (idempotent)."""
        if self.chunks is not None:
            mtmd_cpp.mtmd_input_chunks_free(self.chunks)
            self.chunks = None

    def __del__(self) -> None:  # a request dropped before its slot came: free its chunks
        self.close()


class Projector:
    """One loaded projector for one loaded model (libmtmd's context); thread-safe."""

    def __init__(self, path: Path, model: Any, n_threads: int, use_gpu: bool) -> None:
        mtmd_cpp.mtmd_log_set(_log_callback, ctypes.c_void_p(0))
        mtmd_cpp.mtmd_helper_log_set(_log_callback, ctypes.c_void_p(0))
        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.n_threads = n_threads
        params.print_timings = False
        params.media_marker = MARKER.encode()
        self.path = path
        self._lock = threading.Lock()  # tokenizing (executor) and encoding (scheduler) apart
        self._ctx = mtmd_cpp.mtmd_init_from_file(str(path).encode(), model, params)
        if not self._ctx:
            raise EngineError(
                f"llama.cpp could not load the image projector {path.name} for this model "
                "(see the node's log); the model answers text only"
            )

    def tokenize(self, prompt: str, add_special: bool, images: list[bytes]) -> Media:
        """Text and image chunks of a rendered prompt with one MARKER per image."""
        with self._lock:
            bitmaps = []
            try:
                for i, image in enumerate(images):
                    buf = (ctypes.c_uint8 * len(image)).from_buffer_copy(image)
                    bitmap = mtmd_cpp.mtmd_helper_bitmap_init_from_buf(
                        self._ctx, buf, len(image), False
                    )
                    if not bitmap:
                        raise BadRequest(
                            f"image {i + 1} is not a picture llama.cpp can read "
                            "(PNG, JPEG, GIF, BMP, WebP...)",
                            param="messages",
                            code="invalid_image",
                        )
                    bitmaps.append(bitmap)
                return self._chunks(prompt, add_special, bitmaps)
            finally:
                for bitmap in bitmaps:
                    mtmd_cpp.mtmd_bitmap_free(bitmap)

    def _chunks(self, prompt: str, add_special: bool, bitmaps: list[Any]) -> Media:
        chunks = mtmd_cpp.mtmd_input_chunks_init()
        raw = prompt.encode("utf-8")
        text = mtmd_cpp.mtmd_input_text(raw, len(raw), add_special, True)
        array = (mtmd_cpp.mtmd_bitmap_p_ctypes * max(1, len(bitmaps)))(*bitmaps)
        rc = mtmd_cpp.mtmd_tokenize(self._ctx, chunks, ctypes.byref(text), array, len(bitmaps))
        if rc != 0:
            mtmd_cpp.mtmd_input_chunks_free(chunks)
            why = {
                1: f"the prompt's image markers ({MARKER}) do not match its images",
                2: "an image could not be prepared for the model",
            }.get(rc, f"libmtmd answered {rc}")
            raise BadRequest(f"the images cannot be read: {why}", param="messages")
        return Media(chunks, int(mtmd_cpp.mtmd_helper_get_n_tokens(chunks)))

    def evaluate(self, lctx: Any, media: Media, seq_id: int, n_batch: int) -> tuple[int, int]:
        """Decode `media` as sequence `seq_id` from position 0 (logits for its last token):
        (libmtmd's return code, 0 when it worked; the positions it took)."""
        with self._lock:
            n_past = llama_cpp.llama_pos(0)
            rc = mtmd_cpp.mtmd_helper_eval_chunks(
                self._ctx, lctx, media.chunks, 0, seq_id, n_batch, True, ctypes.byref(n_past)
            )
            media.close()
        return int(rc), int(n_past.value)

    def close(self) -> None:
        """Free libmtmd's context (before the model it belongs to)."""
        with self._lock:
            if self._ctx:
                mtmd_cpp.mtmd_free(self._ctx)
                self._ctx = None


class VisionMixin:
    """Images for the batched runner: what it needs to prefill a slot through a projector."""

    # Provided by BatchedRunner.
    name: str
    n_threads: int
    n_gpu_layers: int | None
    ctx_per_slot: int
    _llm: llama_cpp.Llama | None
    _formatter: Any
    _ctx: Any
    _slots: Slots
    _lock: threading.Condition
    _batch_size: int
    placement: Any
    context: Any  # llama.Context once loaded: `unified` and `total` cells
    _projector: Projector | None = None

    if TYPE_CHECKING:  # the runner's own

        def _load(self) -> None: ...

        async def _run(self, fn: Any, *args: Any) -> Any: ...

        def _accept(self, seq: Sequence, token: int, logprob: Logprob = None) -> Any: ...

    async def media_prompt(
        self,
        messages: list[dict[str, Any]],
        images: list[bytes],
        projector: Path,
        tools: list[Any] | None = None,
        tool_choice: Any = None,
        template_kwargs: dict[str, Any] | None = None,
    ) -> tuple[Media, tuple[str, ...], str]:
        """Render a chat whose text holds one MARKER per image and tokenize it with the images;
        (the prompt, the template's stops, the prompt text)."""
        result: tuple[Media, tuple[str, ...], str] = await self._run(
            self._media_prompt, messages, images, projector, tools, tool_choice, template_kwargs
        )
        return result

    def _media_prompt(
        self,
        messages: list[dict[str, Any]],
        images: list[bytes],
        path: Path,
        tools: list[Any] | None,
        tool_choice: Any,
        template_kwargs: dict[str, Any] | None,
    ) -> tuple[Media, tuple[str, ...], str]:
        self._load()
        assert self._llm is not None and self._formatter is not None
        projector = self._projector_for(path)
        messages, prefill = split_prefill(messages)  # a last assistant message is continued
        try:
            rendered = self._formatter(
                messages=messages, tools=tools, tool_choice=tool_choice, **(template_kwargs or {})
            )
        except Exception as exc:  # the model's own template rejected the conversation
            raise BadRequest(f"the model's chat template rejected the messages: {exc}") from exc
        prompt = rendered.prompt + prefill
        media = projector.tokenize(prompt, not rendered.added_special, images)
        try:
            check_prompt(media.n_tokens, self.ctx_per_slot)
        except BadRequest:
            media.close()
            raise
        stops = tuple(s for s in (rendered.stop or []) if isinstance(s, str) and s)
        return media, stops, prompt

    def _projector_for(self, path: Path) -> Projector:
        with self._lock:
            if self._projector is not None and self._projector.path == path:
                return self._projector
            old, self._projector = self._projector, None
        if old is not None:
            old.close()
        assert self._llm is not None
        use_gpu = llama_cpp.llama_supports_gpu_offload() and self.n_gpu_layers != 0
        projector = Projector(path, self._llm._model.model, self.n_threads, use_gpu)
        with self._lock:
            self._projector = projector
        log.info("%s: image projector %s loaded", self.name, path.name)
        return projector

    def _close_projector(self) -> None:
        """Free the projector before the model (the runner's close)."""
        projector, self._projector = self._projector, None
        if projector is not None:
            projector.close()

    def _prefill_media(self, running: list[tuple[int, Sequence]]) -> None:
        """Evaluate the images of sequences just admitted, each for its slot, and sample their
        first token (llama.cpp's last logits are theirs until the next decode)."""
        for slot, seq in running:
            media = seq.request.media
            if media is None:
                continue
            # The slot was admitted like any other, with a placeholder prompt that shares no
            # cached prefix (so its KV cache is empty): the images replace that prompt.
            seq.request.media = None
            seq.pending.clear()
            seq.reusable = False
            if seq.request.cancel.is_set():
                media.close()
                continue
            n_tokens = media.n_tokens
            if self.context is not None and self.context.unified:  # make room in shared cells
                with self._lock:
                    self._slots.evict_cached(n_tokens, self.context.total)
            rc, n_past = -1, 0
            if self._projector is not None:  # loaded when the prompt was tokenized
                rc, n_past = self._projector.evaluate(self._ctx, media, slot, self._batch_size)
            media.close()
            if rc != 0:
                error = decode_error(self.name, rc, self.placement)
                log.warning("%s: reading images failed: %s", self.name, error.message)
                self._end(slot, seq, error)
                continue
            seq.n_past = n_past
            seq.history = [-1] * n_tokens  # its KV cells, images too (the shared cache counts)
            token = llama_cpp.llama_sampler_sample(seq.sampler, self._ctx, -1)
            finished = self._accept(seq, token, logprob_at(self, seq, -1, token))
            if finished is not None:
                self._end(slot, seq, finished)

    def _end(self, slot: int, seq: Sequence, item: Any) -> None:
        with self._lock:
            self._slots.free(slot, keep=False)
        seq.request.emit(item)


__all__ = ["MARKER", "MAX_IMAGES", "Media", "Projector", "VisionMixin", "find_projector"]


def find_projector(paths: list[Path]) -> Path | None:
    """The image projector among a model's files: a GGUF whose header says `clip` with a
    vision encoder (llama.cpp's mmproj files), whatever its name."""
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        if _is_projector(path, stat.st_size, stat.st_mtime_ns):
            return path
    return None


@functools.lru_cache(maxsize=64)
def _is_projector(path: Path, size: int, mtime_ns: int) -> bool:
    """Cached by size and time: a request with images asks for every one."""
    try:
        meta = read_header(path).metadata
    except EngineError:
        return False
    return (
        meta.get("general.architecture") == "clip"
        and meta.get("clip.has_vision_encoder", True) is not False
    )
