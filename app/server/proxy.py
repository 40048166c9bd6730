"""/v1 inference: pick a node that has the model ready and relay its answer unchanged.

One retry loop over `Upstream`s (HTTP, or in-process for the local node): a node that gives
no answer, or a server error, is skipped for the next one. Streams are relayed buffer by
buffer as they arrive (nothing parsed on the hot path); a node that dies mid-stream ends the
stream with an error event, never a silently cut answer; a client that leaves cancels the
generation. Once an answer is done, its last bytes are read for the usage block: the node's
generation speed for the model, which dispatch prefers. What was sent and answered is kept by
reference (app.server.bodies: the bytes, a stream's buffers in a list), read once a second by
the history's flusher; a request that had to wait for a slot says where it joined the queue
(`x-llmlb-queue-position`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from app.core.errors import BadRequest, NotFound, Unavailable, UserFacingError
from app.core.types import Lifecycle
from app.server.aliases import resolve
from app.server.auth import CLIENT
from app.server.bodies import RAW_STREAM_CAP, Capture
from app.server.dispatch import POSITION_HEADER, Ticket, affinity_key
from app.server.http import INFERENCE_BODY_LIMIT, read_raw_json
from app.server.nodes import NodeView
from app.server.speed import TAIL, usage_tokens
from app.server.state import BALANCER, Balancer, balancer
from app.server.translate import CHAT_PATH, AnswerShape, Translate
from app.server.upstream import UpstreamAnswer, UpstreamFailed, http_session

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
HTTP = web.AppKey("proxy_http", aiohttp.ClientSession)
_MODEL_IN_MESSAGES = 200  # characters of an unknown model name echoed back


async def http_pool(app: web.Application) -> Any:
    """cleanup_ctx: the pooled session of the app's HTTP upstreams, for the app's lifetime."""
    session = http_session(app[BALANCER].settings.upstream_deadline)
    app[HTTP] = session
    yield
    await session.close()


def _why_no_node(b: Balancer, model: str) -> UserFacingError:
    """Why no node can take `model` now, in the user's terms (FR-8)."""
    status = b.registry.status_of(model)
    if status.lifecycle_status == Lifecycle.PENDING and status.download_progress is not None:
        percent = status.download_progress["percent"]
        return Unavailable(
            f"the model '{model}' is still downloading ({percent:.0f}%); try again when it "
            "is ready",
            code="model_downloading",
            headers={"Retry-After": "10"},
        )
    if status.lifecycle_status == Lifecycle.ERROR:
        return Unavailable(
            f"the model '{model}' failed on every node: {status.error}", code="model_error"
        )
    return Unavailable(f"no online node has the model '{model}' ready", code="no_capable_nodes")


@dataclass(slots=True)
class _Note:
    """What one relayed request leaves in the history."""

    model: str = ""
    node: str | None = None
    stream: bool = False
    latency: float | None = None  # ms until the node answered
    error: str | None = None
    known: bool = False  # the model exists: it may name a metrics series
    tokens_in: int | None = None  # the answer's usage block, when it had one
    tokens_out: int | None = None
    generation_ms: float | None = None  # the time those tokens took
    client: str | None = None  # the API key's name, if one was used
    bodies: Capture = field(default_factory=Capture)


async def _handle(
    request: web.Request, path: str, translate: Translate | None = None
) -> web.StreamResponse:
    """Relay, and leave a record of what happened (written later, in a batch). With
    `translate`, the body is another API's, relayed as Chat Completions (app.server.translate)."""
    b = balancer(request)
    started = time.perf_counter()
    note = _Note(client=request.get(CLIENT))  # read once: a missing key costs a KeyError
    status: int = 500
    error: str | None = "internal error in the balancer"
    try:
        response = await _relay(request, path, note, translate)
        status, error = response.status, note.error
        return response
    except UserFacingError as exc:
        status, error = exc.status, exc.message
        note.bodies.response = json.dumps(exc.body()).encode()  # what the client is told
        raise
    finally:
        b.history.record(
            path,
            note.model,
            note.node,
            status,
            note.stream,
            started,
            note.latency,
            error,
            known_model=note.known,
            tokens_in=note.tokens_in,
            tokens_out=note.tokens_out,
            generation_ms=note.generation_ms,
            client=note.client,
            bodies=note.bodies,
        )


async def relay_translated(
    request: web.Request, path: str, translate: Translate
) -> web.StreamResponse:
    """Another API's request at `path`, relayed as Chat Completions and answered in its shape."""
    return await _handle(request, path, translate)


async def _relay(
    request: web.Request, path: str, note: _Note, translate: Translate | None
) -> web.StreamResponse:
    b = balancer(request)
    if b.paused:
        raise Unavailable(
            "serving is paused in the llmlb app; resume it from the tray menu",
            code="serving_paused",
        )
    raw, body = await read_raw_json(request, INFERENCE_BODY_LIMIT)
    note.bodies.keep_request(raw)  # as the client sent it, before any translation
    endpoint = path
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    shape: AnswerShape | None = None
    if translate is not None:
        body, shape = await translate(body)
        raw, path = json.dumps(body).encode(), CHAT_PATH
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model from /v1/models", param="model")
    # A client's made-up name is kept bounded in the history, and never names a metrics series.
    note.model = model
    known = model in b.registry.records or b.external.serves(model)
    if not known and b.settings.model_aliases:
        alias = resolve(model, b.settings.model_aliases)
        if alias is not None:  # the node is asked for the model by its own name
            model, body = alias, {**body, "model": alias}
            raw = json.dumps(body).encode()
            known = model in b.registry.records or b.external.serves(model)
    if not known:
        raise NotFound(
            f"the model '{model[:_MODEL_IN_MESSAGES]}' does not exist; see GET /v1/models",
            code="model_not_found",
            param="model",
        )
    note.model, note.known = model, True
    stream = body.get("stream") is True
    note.stream = stream
    key = functools.partial(affinity_key, body)  # computed only if several nodes compete
    ticket = Ticket(model, endpoint, note.client)
    session = request.app[HTTP]
    tried: set[str] = set()
    last_error = "no node answered"
    last_answer: tuple[int, bytes] | None = None  # a node's own error, to pass on if all fail
    while True:
        try:
            node = await b.dispatcher.acquire(model, tried, key, ticket)
        except LookupError:
            if last_answer is not None:
                note.bodies.keep_response(last_answer[1])
                return web.Response(
                    status=last_answer[0], body=last_answer[1], content_type="application/json"
                )
            # Nodes holding the model in error were tried (to load it again): their error
            # says more than that they did not answer.
            failed = b.registry.status_of(model).lifecycle_status == Lifecycle.ERROR
            if tried and not failed:
                raise Unavailable(last_error, code="node_unavailable", status=502) from None
            raise _why_no_node(b, model) from None
        tried.add(node.id)
        note.node = node.id
        started = time.perf_counter()
        try:
            answer = await b.dispatcher.upstream(node, session).call(
                path, raw, stream=stream, client_gone=lambda: _gone(request)
            )
        except UpstreamFailed as exc:
            b.dispatcher.release(node, ticket)
            last_error = f"the node {node.name} {exc}"
            log.warning("%s; trying another node", last_error)
            continue
        except BaseException:
            b.dispatcher.release(node, ticket)
            raise
        try:
            if answer.status >= 500 and answer.status != 503:
                last_error = f"the node {node.name} answered {answer.status}"
                last_answer = (answer.status, answer.body)
                log.warning("%s; trying another node", last_error)
                continue
            note.latency = (time.perf_counter() - started) * 1000
            node.record_latency(note.latency)
            if answer.stream is not None:
                return await _stream(request, answer, node, note, shape, ticket.position)
            if answer.status == 200:  # generation speed: the whole answer's tokens, its time
                note.tokens_in, note.tokens_out = usage_tokens(answer.body)
                note.generation_ms = note.latency
                node.speed.observe(model, note.tokens_out, note.latency / 1000)
            body_out = answer.body
            if shape is not None and answer.status == 200:
                body_out = shape.whole(body_out)
            # Our API answers JSON, whatever type the node claims (never its HTML).
            response = web.Response(
                body=body_out, status=answer.status, content_type="application/json"
            )
            response.headers["x-llmlb-node"] = node.id
            if ticket.position is not None:
                response.headers[POSITION_HEADER] = str(ticket.position)
            note.bodies.keep_response(body_out)
            return response
        finally:
            await answer.aclose()  # a stream the client left: the node cancels the generation
            b.dispatcher.release(node, ticket, answer.status == 200 and note.error is None)


def _gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def _stream(
    request: web.Request,
    answer: UpstreamAnswer,
    node: NodeView,
    note: _Note,
    shape: AnswerShape | None = None,
    position: int | None = None,
) -> web.StreamResponse:
    """Relay a streamed answer as it comes (the caller closes it); `shape` translates it.
    Its buffers are kept as relayed, up to RAW_STREAM_CAP bytes (the flusher assembles them);
    `position`: where the request joined the queue, if it waited."""
    assert answer.stream is not None
    chunks = answer.stream
    tail = [b""]  # the end of a translated stream as the node sent it: its usage block
    if shape is not None:

        async def kept(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            async for chunk in stream:
                tail[0] = (tail[0] + chunk)[-TAIL:]
                yield chunk

        chunks = shape.stream(kept(answer.stream))
    response = web.StreamResponse(status=answer.status)
    response.headers["Content-Type"] = "text/event-stream"  # never the node's own type
    response.headers["Cache-Control"] = "no-cache"
    response.headers["x-llmlb-node"] = node.id
    if position is not None:
        response.headers[POSITION_HEADER] = str(position)
    parts: list[bytes] = []
    note.bodies.parts = parts
    size = 0
    try:
        await response.prepare(request)
        # The first buffer is taken apart so that the loop stays a write (and the swap that
        # keeps the last two buffers: the usage block, then `[DONE]`).
        prev = last = b""
        seconds = 0.0  # from the first buffer to the last: stays 0 unless the stream ends well
        try:
            last = await anext(chunks, b"")
            first_at = time.perf_counter()
            parts.append(last)
            size = len(last)
            try:
                if last:
                    await response.write(last)
            except ConnectionError:
                return _client_left(response, note)
            async for chunk in chunks:
                try:  # free unless it raises: the per-chunk path stays one write
                    await response.write(chunk)
                except ConnectionError:
                    return _client_left(response, note)
                prev, last = last, chunk
                if size < RAW_STREAM_CAP:  # a reference kept, nothing parsed
                    parts.append(chunk)
                    size += len(chunk)
            seconds = time.perf_counter() - first_at
        except Exception as exc:  # from the node's side only: it died or timed out mid-stream
            log.warning("node %s died mid-stream: %r", node.id, exc)
            message = f"the node {node.name} stopped answering mid-stream"
            note.error = message
            error = {
                "error": {
                    "message": message,
                    "type": "server_error",
                    "param": None,
                    "code": "node_failed",
                }
            }
            said = (
                b"data: " + json.dumps(error).encode() + b"\n\n"
                if shape is None
                else shape.failed(message)
            )
            parts.append(said)
            await response.write(said)
        await response.write_eof()
    except ConnectionError:
        return _client_left(response, note)
    finally:
        note.bodies.stream_size = size  # what the history's budget counts (RAW_STREAM_CAP)
    if seconds:  # generation speed: the tokens after the first one, in the time since it came
        note.tokens_in, tokens = (
            usage_tokens(prev, last) if shape is None else usage_tokens(tail[0])
        )
        if tokens is not None:
            note.tokens_out = tokens
            note.generation_ms = seconds * 1000  # from the first token to the last
            node.speed.observe(note.model, tokens - 1, seconds)
    return response


def _client_left(response: web.StreamResponse, note: _Note) -> web.StreamResponse:
    log.info("client left mid-stream; generation cancelled")
    note.error = "the client left mid-stream"
    return response


@routes.post("/v1/chat/completions")
async def chat(request: web.Request) -> web.StreamResponse:
    """OpenAI chat completions, streamed or not."""
    return await _handle(request, "/v1/chat/completions")


@routes.post("/v1/completions")
async def completions(request: web.Request) -> web.StreamResponse:
    """OpenAI text completions."""
    return await _handle(request, "/v1/completions")


@routes.post("/v1/embeddings")
async def embeddings(request: web.Request) -> web.StreamResponse:
    """OpenAI embeddings."""
    return await _handle(request, "/v1/embeddings")


@routes.post("/v1/rerank")
@routes.post("/v1/reranking")  # and the other paths llama.cpp's server answers rerank on
@routes.post("/rerank")
@routes.post("/reranking")
async def rerank(request: web.Request) -> web.StreamResponse:
    """Documents ordered by a reranking model's relevance to a query (the Jina/Cohere shape);
    the node, or an external llama-server, takes it at /v1/rerank."""
    return await _handle(request, "/v1/rerank")
