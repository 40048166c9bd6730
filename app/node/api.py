"""The node's own HTTP app: OpenAI inference on /v1, status and sync on /node."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from app.core.errors import BadRequest, NotFound, Unauthorized, Unavailable, UserFacingError
from app.node import openai_params as params
from app.node import tools
from app.node.engine import Delta, EngineError, Finished, Item, ModelRunner, Sampling
from app.node.engines import Runner

if TYPE_CHECKING:
    from app.node.agent import NodeAgent

log = logging.getLogger(__name__)
NODE: web.AppKey[Any] = web.AppKey("node")
BODY_LIMIT = 128 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserFacingError as exc:
        return web.json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = UserFacingError(f"{request.method} {request.path}: {exc.reason}", status=exc.status)
        return web.json_response(err.body(), status=exc.status)
    except Exception:
        log.exception("node error on %s", request.path)
        err = UserFacingError(
            "internal error in the node; see its log",
            status=500,
            type="server_error",
            code="server_error",
        )
        return web.json_response(err.body(), status=500)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only our balancer may call the node: it presents the node token."""
    node = request.app[NODE]
    expected = node.node_token
    presented = request.headers.get("X-Node-Token", "")
    if request.path != "/health" and not (expected and hmac.compare_digest(presented, expected)):
        raise Unauthorized("this node only answers its balancer (X-Node-Token)")
    return await handler(request)


def create_node_app(node: NodeAgent) -> web.Application:
    """The node's application."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=BODY_LIMIT)
    app[NODE] = node
    app.router.add_get("/health", _health)
    app.router.add_get("/node/status", _status)
    app.router.add_post("/node/sync", _sync)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/v1/completions", _completions)
    app.router.add_post("/v1/embeddings", _embeddings)
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE].status())


async def _sync(request: web.Request) -> web.Response:
    request.app[NODE].sync.trigger()
    return web.json_response({"status": "sync started"}, status=202)


async def _models(request: web.Request) -> web.Response:
    node = request.app[NODE]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "llmlb-node"}
        for name, state in node.sync.states.items()
        if state.state == "ready"
    ]
    return web.json_response({"object": "list", "data": data})


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


async def _runner(request: web.Request, model: str, embedding: bool = False) -> Runner:
    node = request.app[NODE]
    state = node.sync.states.get(model)
    path = node.library.model_path(model)
    if state is None or (path is None and state.state != "downloading"):
        raise NotFound(
            f"the model '{model}' is not on this node", code="model_not_found", param="model"
        )
    if state.state == "error":
        raise Unavailable(f"the model '{model}' cannot run here: {state.error}", code="model_error")
    if path is None:
        percent = 100.0 * state.downloaded_bytes / state.total_bytes if state.total_bytes else 0
        raise Unavailable(
            f"the model '{model}' is still downloading ({percent:.0f}%)", code="model_downloading"
        )
    manifest = node.library.manifest(model) or {}
    is_embedding = "Embedding" in (manifest.get("capabilities") or [])
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
    runner: Runner = node.engines.get(model, path, is_embedding)
    try:
        await runner.load()
    except EngineError as exc:
        node.sync.mark_error(model, exc.message)
        raise
    return runner


def _usage(done: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


async def _chat(request: web.Request) -> web.StreamResponse:
    req = params.chat_request(await _body(request))
    tool_plan = tools.plan(req.tools, req.tool_choice)
    runner = await _runner(request, req.model)
    tokens, template_stops = await runner.chat_prompt(
        req.messages, tool_plan.template_tools, req.tool_choice
    )
    sampling = Sampling(
        **{
            **req.sampling.__dict__,
            "stop": req.sampling.stop + template_stops,
            "json_schema": tool_plan.schema or req.sampling.json_schema,
        }
    )
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": req.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    if req.stream:
        content = _text_events(chunk({"content": _MARK}, None))
        held: str | None = ""  # text that may still turn out to be a tool call

        def encode(item: Item) -> list[bytes]:
            nonlocal held
            if isinstance(item, Delta):
                if tool_plan.expect_calls and held is not None:
                    held += item.text
                    if tools.might_be_call(held):
                        return []
                    text, held = held, None  # plain text after all: stream it
                    return [content(text)]
                return [content(item.text)]
            events = []
            finish = item.finish_reason
            if held:
                calls = tools.parse_calls(held)
                if calls:
                    delta = [{"index": i, **c} for i, c in enumerate(calls)]
                    events.append(_event(chunk({"tool_calls": delta}, None)))
                    finish = "tool_calls"
                else:
                    events.append(content(held))
            events.append(_event(chunk({}, finish)))
            if req.include_usage:
                usage = {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": req.model,
                    "choices": [],
                    "usage": _usage(item),
                }
                events.append(_event(usage))
            return events

        opening = [_event(chunk({"role": "assistant", "content": ""}, None))]
        return await _sse(request, runner, tokens, sampling, opening, encode)
    text, done = await _collect(request, runner, tokens, sampling)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = done.finish_reason
    calls = tools.parse_calls(text) if tool_plan.expect_calls else None
    if calls:
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        finish = "tool_calls"
    return web.json_response(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _usage(done),
        }
    )


async def _completions(request: web.Request) -> web.StreamResponse:
    req = params.completion_request(await _body(request))
    runner = await _runner(request, req.model)
    tokens = await runner.text_prompt(req.prompt)
    ident = f"cmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    prefix = req.prompt if req.echo else ""

    def choice(text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": req.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }

    if req.stream:
        text_event = _text_events(choice(_MARK, None))

        def encode(item: Item) -> list[bytes]:
            if isinstance(item, Delta):
                return [text_event(item.text)]
            events = [_event(choice("", item.finish_reason))]
            if req.include_usage:
                events.append(_event({**choice("", None), "choices": [], "usage": _usage(item)}))
            return events

        opening = [text_event(prefix)] if prefix else []
        return await _sse(request, runner, tokens, req.sampling, opening, encode)
    text, done = await _collect(request, runner, tokens, req.sampling)
    body = choice(prefix + text, done.finish_reason)
    body["usage"] = _usage(done)
    return web.json_response(body)


async def _collect(
    request: web.Request, runner: Runner, tokens: list[int], sampling: Sampling
) -> tuple[str, Finished]:
    cancel = threading.Event()
    parts: list[str] = []
    pieces = runner.stream(tokens, sampling, cancel)
    try:
        async for item in pieces:
            if isinstance(item, Finished):
                return "".join(parts), item
            parts.append(item.text)
            if request.transport is None or request.transport.is_closing():
                log.info("client left; generation cancelled")
                break
    finally:
        await pieces.aclose()
    raise Unavailable("generation ended without a result", code="generation_cancelled")


_MARK = "\x00llmlb-text\x00"  # where the text goes in a pre-encoded event


def _event(obj: Any) -> bytes:
    """One server-sent event carrying `obj` as JSON."""
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _text_events(template: dict[str, Any]) -> Callable[[str], bytes]:
    """Events that differ only in one text (the marker's place in `template`): the JSON is
    encoded once, and each event is its two halves around the JSON-encoded text."""
    head, tail = _event(template).split(json.dumps(_MARK).encode())
    return lambda text: head + json.dumps(text).encode() + tail


async def _sse(
    request: web.Request,
    runner: Runner,
    tokens: list[int],
    sampling: Sampling,
    opening: list[bytes],
    encode: Callable[[Item], list[bytes]],
) -> web.StreamResponse:
    """Stream a generation as server-sent events: `opening`, then `encode` of every item (one
    write for everything generated since the last), then [DONE]."""
    cancel = threading.Event()
    batches = runner.batches(tokens, sampling, cancel)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        if opening:
            await response.write(b"".join(opening))
        async for batch in batches:
            events = [event for item in batch for event in encode(item)]
            if events:
                await response.write(b"".join(events))
        await response.write(b"data: [DONE]\n\n")
    except (ConnectionResetError, ConnectionError):
        log.info("client left mid-stream; generation cancelled")
        cancel.set()
        return response
    except UserFacingError as exc:
        await response.write(_event(exc.body()))
    finally:
        await batches.aclose()
    await response.write_eof()
    return response


async def _embeddings(request: web.Request) -> web.Response:
    body = await _body(request)
    model = params.model_name(body)
    inputs, encoding = params.embedding_inputs(body)
    runner = await _runner(request, model, embedding=True)
    assert isinstance(runner, ModelRunner)  # embeddings keep their own one-sequence path
    vectors, count = await runner.embed(inputs)
    data = []
    for i, vector in enumerate(vectors):
        value: Any = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }
    )
