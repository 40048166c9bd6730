"""/v1 inference: pick a node that has the model ready and relay its answer unchanged.

Streams are relayed buffer by buffer as they arrive (nothing parsed on the hot path); a
node that fails before answering is skipped for the next one; a node that dies mid-stream
ends the stream with an error event, never a silently cut answer.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from app.core.errors import BadRequest, NotFound, Unavailable, UpstreamError, UserFacingError
from app.core.types import InProcessAnswer
from app.server.dispatch import affinity_key
from app.server.http import INFERENCE_BODY_LIMIT, read_capped, read_raw_json
from app.server.nodes import NodeView
from app.server.state import BALANCER, Balancer, balancer

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
HTTP = web.AppKey("proxy_http", aiohttp.ClientSession)
# A node's non-streamed answer is read whole before it is relayed: bounded, so a node that
# sends without end cannot fill the balancer's memory (embeddings of big batches fit).
ANSWER_LIMIT = 128 * 1024 * 1024
_MODEL_IN_MESSAGES = 200  # characters of an unknown model name echoed back


async def http_pool(app: web.Application) -> Any:
    """cleanup_ctx: one pooled client session for the app's lifetime.

    Every call to a node has a total deadline (the whole answer, streams included), so a node
    that trickles bytes cannot hold a request forever."""
    deadline = app[BALANCER].settings.upstream_deadline
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=deadline, connect=5, sock_read=600),
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
        auto_decompress=False,
    )
    app[HTTP] = session
    yield
    await session.close()


def _why_no_node(b: Balancer, model: str) -> UserFacingError:
    """Why no node can take `model` now, in the user's terms (FR-8)."""
    status = b.registry.status_of(model)
    if status.lifecycle_status == "pending" and status.download_progress is not None:
        percent = status.download_progress["percent"]
        return Unavailable(
            f"the model '{model}' is still downloading ({percent:.0f}%); try again when it "
            "is ready",
            code="model_downloading",
            headers={"Retry-After": "10"},
        )
    if status.lifecycle_status == "error":
        return Unavailable(
            f"the model '{model}' failed on every node: {status.error}", code="model_error"
        )
    return Unavailable(f"no online node has the model '{model}' ready", code="no_capable_nodes")


async def _handle(request: web.Request, path: str) -> web.StreamResponse:
    """Relay, and leave a record of what happened (written later, in a batch)."""
    b = balancer(request)
    started = time.perf_counter()
    note: dict[str, Any] = {
        "model": "",
        "node": None,
        "stream": False,
        "latency": None,
        "error": None,
        "known": False,  # the model exists: it may name a metrics series
    }
    status, error = 500, "internal error in the balancer"
    try:
        response = await _relay(request, path, note)
        status, error = response.status, note["error"]
        return response
    except UserFacingError as exc:
        status, error = exc.status, exc.message
        raise
    finally:
        b.history.record(
            path,
            note["model"],
            note["node"],
            status,
            note["stream"],
            started,
            note["latency"],
            error,
            known_model=note["known"],
        )


async def _relay(request: web.Request, path: str, note: dict[str, Any]) -> web.StreamResponse:
    b = balancer(request)
    if b.paused:
        raise Unavailable(
            "serving is paused in the llmlb app; resume it from the tray menu",
            code="serving_paused",
        )
    raw, body = await read_raw_json(request, INFERENCE_BODY_LIMIT)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required: the name of a model from /v1/models", param="model")
    # A client's made-up name is kept bounded in the history, and never names a metrics series.
    note["model"] = model
    if model not in b.registry.records and model not in b.external.served_elsewhere():
        raise NotFound(
            f"the model '{model[:_MODEL_IN_MESSAGES]}' does not exist; see GET /v1/models",
            code="model_not_found",
            param="model",
        )
    note["model"], note["known"] = model, True
    stream = body.get("stream") is True
    note["stream"] = stream
    key = affinity_key(body)
    session = request.app[HTTP]
    tried: set[str] = set()
    last_error = "no node answered"
    last_answer: tuple[int, bytes] | None = None  # a node's own error, to pass on if all fail
    while True:
        try:
            node = await b.dispatcher.acquire(model, tried, key)
        except LookupError:
            if last_answer is not None:
                return web.Response(
                    status=last_answer[0], body=last_answer[1], content_type="application/json"
                )
            if tried:
                raise Unavailable(last_error, code="node_unavailable", status=502) from None
            raise _why_no_node(b, model) from None
        tried.add(node.id)
        note["node"] = node.id
        started = time.perf_counter()
        local = b.nodes.in_process.get(node.url)
        if local is not None:
            try:
                answer = await local.answer(path, raw, lambda: _gone(request))
            except BaseException:
                b.dispatcher.release(node)
                raise
            if answer.status >= 500 and answer.status != 503:
                b.dispatcher.release(node)
                last_error = f"the node {node.name} answered {answer.status}"
                last_answer = (answer.status, answer.body)
                log.warning("%s; trying another node", last_error)
                continue
            note["latency"] = (time.perf_counter() - started) * 1000
            node.record_latency(note["latency"])
            return await _answer_in_process(request, answer, node, note, b)
        try:
            upstream = await session.post(
                node.url + path,
                data=raw,
                headers={"Content-Type": "application/json", **node.auth_headers()},
                ssl=node.ssl(),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            b.dispatcher.release(node)
            last_error = f"the node {node.name} did not respond ({type(exc).__name__})"
            log.warning("%s; trying another node", last_error)
            continue
        try:
            if upstream.status >= 500 and upstream.status != 503:
                last_error = f"the node {node.name} answered {upstream.status}"
                last_answer = (upstream.status, await _read_answer(upstream, node))
                log.warning("%s; trying another node", last_error)
                continue
            note["latency"] = (time.perf_counter() - started) * 1000
            node.record_latency(note["latency"])
            if stream and upstream.status == 200:
                return await _stream(request, upstream, node, note)
            payload = await _read_answer(upstream, node)
            # Our API answers JSON, whatever type the node claims (never its HTML).
            response = web.Response(
                body=payload, status=upstream.status, content_type="application/json"
            )
            response.headers["x-llmlb-node"] = node.id
            return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            last_error = f"the node {node.name} failed mid-answer ({type(exc).__name__})"
            log.warning("%s", last_error)
            continue
        finally:
            upstream.close()
            b.dispatcher.release(node)


async def _read_answer(upstream: aiohttp.ClientResponse, node: NodeView) -> bytes:
    """A node's whole answer, or UpstreamError once it passes ANSWER_LIMIT."""
    length = upstream.content_length
    if length is not None:  # the usual case: HTTP framing stops the read at that length
        if length > ANSWER_LIMIT:
            raise UpstreamError(
                f"the node {node.name} sent an answer of {length} bytes, over the limit of "
                f"{ANSWER_LIMIT}",
                code="node_answer_too_large",
            )
        return await upstream.read()
    body = await read_capped(upstream.content, ANSWER_LIMIT)
    if body is None:
        raise UpstreamError(
            f"the node {node.name} sent an answer over the limit of {ANSWER_LIMIT} bytes",
            code="node_answer_too_large",
        )
    return body


def _gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def _answer_in_process(
    request: web.Request,
    answer: InProcessAnswer,
    node: NodeView,
    note: dict[str, Any],
    b: Balancer,
) -> web.StreamResponse:
    """A node in this process answered: relay its JSON or its SSE bytes, as from HTTP."""
    try:
        if answer.stream is None:
            response = web.Response(
                body=answer.body, status=answer.status, content_type="application/json"
            )
            response.headers["x-llmlb-node"] = node.id
            return response
        stream = web.StreamResponse(status=answer.status)
        stream.headers["Content-Type"] = "text/event-stream"
        stream.headers["Cache-Control"] = "no-cache"
        stream.headers["x-llmlb-node"] = node.id
        try:
            await stream.prepare(request)
            async for data in answer.stream:
                await stream.write(data)
        except (ConnectionResetError, ConnectionError):
            log.info("client left mid-stream; generation cancelled")
            note["error"] = "the client left mid-stream"
            return stream
        await stream.write_eof()
        return stream
    finally:
        if answer.stream is not None:
            await answer.stream.aclose()  # the client left: the node cancels the generation
        b.dispatcher.release(node)


async def _stream(
    request: web.Request, upstream: aiohttp.ClientResponse, node: NodeView, note: dict[str, Any]
) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    response.headers["Content-Type"] = "text/event-stream"  # never the node's own type
    response.headers["Cache-Control"] = "no-cache"
    response.headers["x-llmlb-node"] = node.id
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
    except (
        aiohttp.ClientPayloadError,
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientOSError,
        TimeoutError,
    ) as exc:
        log.warning("node %s died mid-stream: %s", node.id, exc)
        note["error"] = f"the node {node.name} stopped answering mid-stream"
        error = {
            "error": {
                "message": f"the node {node.name} stopped answering mid-stream",
                "type": "server_error",
                "param": None,
                "code": "node_failed",
            }
        }
        await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
    except ConnectionResetError:
        log.info("client left mid-stream; closing the node's stream")
        note["error"] = "the client left mid-stream"
        return response
    await response.write_eof()
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
