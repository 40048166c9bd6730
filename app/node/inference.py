"""The node's OpenAI inference, apart from HTTP: a request body in, a typed reply out.

It reaches the node only through `NodeModels` (a runner for a model). Two adapters serve its
replies: the node's own HTTP app (`app.node.api`), to its balancer and to LAN clients, and
`app.local_upstream`, to a balancer in the same process without HTTP (the desktop app's and
`llmlb serve`'s local node), which saves every token a trip through two HTTP stacks on the
same cores.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import BadRequest, NotFound, Unavailable, UserFacingError
from app.node import embedding, reasoning, tools
from app.node import openai_params as params
from app.node.engine.batched import BatchedRunner
from app.node.engine.pool import Runner
from app.node.engine.types import Delta, Finished, Item, Sampling
from app.node.engine.vision import Media
from app.node.models import NodeModels

log = logging.getLogger(__name__)


@dataclass
class Call:
    """One inference request to this node."""

    models: NodeModels
    body: dict[str, Any]
    client_gone: Callable[[], bool] = field(default=lambda: False)


@dataclass
class JsonReply:
    """A whole answer: a JSON object."""

    body: dict[str, Any]
    status: int = 200


@dataclass
class StreamReply:
    """A generation to stream as server-sent events."""

    runner: Runner
    tokens: list[int]
    sampling: Sampling
    opening: list[bytes]  # events before the first token
    encode: Callable[[Item], list[bytes]]  # the events of one generated item
    media: Media | None = None  # a prompt with images (then `tokens` stand for its length)

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The SSE bytes: `opening`, then everything generated since the last piece, then
        [DONE] once the generation has ended; an error event if it fails. Closing this early
        (the client left) cancels the generation."""
        cancel = threading.Event()
        batches = self.runner.batches(self.tokens, self.sampling, cancel, self.media)
        try:
            if self.opening:
                yield b"".join(self.opening)
            try:
                async for batch in batches:
                    events = [event for item in batch for event in self.encode(item)]
                    if events:
                        yield b"".join(events)
            except UserFacingError as exc:
                yield _event(exc.body())
                return
            yield b"data: [DONE]\n\n"
        finally:
            cancel.set()
            await batches.aclose()


Reply = JsonReply | StreamReply


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or BadRequest saying why not."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _usage(done: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


def timings(done: Finished) -> dict[str, Any]:
    """llama-server's `timings` of an answer, as the node measured them (a client's tokens/s,
    which chunk arrival cannot give once tokens travel gathered)."""
    predicted = round(done.predicted_ms, 3)  # the speed as figured from the numbers sent
    return {
        "prompt_n": done.prompt_tokens,
        "prompt_ms": round(done.prompt_ms, 3),
        "predicted_n": done.completion_tokens,
        "predicted_ms": predicted,
        "predicted_per_second": (
            round(done.completion_tokens * 1000 / predicted, 3) if predicted > 0 else None
        ),
    }


async def chat(call: Call) -> Reply:
    """`/v1/chat/completions`."""
    req = params.chat_request(call.body)
    tool_plan = tools.plan(req.tools, req.tool_choice)
    if req.images and req.model in call.models.ready() and not call.models.projector(req.model):
        raise _not_vision(req.model)  # before loading a model only to refuse the request
    runner = await call.models.runner_for(req.model)
    media: Media | None = None
    if req.images:
        tokens, template_stops, prompt, media = await _image_prompt(call, req, runner, tool_plan)
    else:
        tokens, template_stops, prompt = await runner.chat_prompt(
            req.messages, tool_plan.template_tools, req.tool_choice, req.template_kwargs
        )
    grammar = tool_plan.grammar or req.sampling.grammar
    constrained = bool(grammar or req.sampling.json_schema)
    # A grammar ends the answer itself; the template's stop text could then only come up
    # inside a JSON string, and stopping there would cut the JSON. And the grammar's text is
    # the answer, even where the template opened a thought (read as if it had not).
    stops = () if constrained else template_stops
    reasoning_format, prompt = ("none", "") if constrained else (req.reasoning_format, prompt)
    sampling = Sampling(
        **{
            **req.sampling.__dict__,
            "stop": req.sampling.stop + stops,
            "json_schema": tool_plan.schema or req.sampling.json_schema,
            "grammar": grammar,
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
        thought = _text_events(chunk({"reasoning_content": _MARK}, None))
        split = reasoning.splitter(reasoning_format, prompt)
        held: str | None = ""  # text that may still turn out to be a tool call

        def answer(text: str) -> list[bytes]:
            nonlocal held
            if tool_plan.expect_calls and held is not None:
                held += text
                if tools.might_be_call(held):
                    return []
                text, held = held, None  # plain text after all: stream it
            return [content(text)] if text else []

        def encode(item: Item) -> list[bytes]:
            think, text = split.feed(item.text) if isinstance(item, Delta) else split.end()
            events = [thought(think)] if think else []
            events += answer(text)
            if isinstance(item, Delta):
                return events
            finish = item.finish_reason
            if held:
                calls = _calls(held, tool_plan)
                if calls:
                    delta = [{"index": i, **c} for i, c in enumerate(calls)]
                    events.append(_event(chunk({"tool_calls": delta}, None)))
                    finish = "length" if finish == "length" else "tool_calls"
                else:
                    events.append(content(held))
            last = chunk({}, finish) | {"timings": timings(item)}  # where llama-server puts it
            if finish == "stop" and item.stop in req.sampling.stop:
                last["choices"][0]["stop_reason"] = item.stop  # which stop, as vLLM says it
            events.append(_event(last))
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
        return StreamReply(runner, tokens, sampling, opening, encode, media)
    whole, done = await _collect(call, runner, tokens, sampling, media)
    think, text = reasoning.split_all(reasoning_format, prompt, whole)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = done.finish_reason
    calls = _calls(text, tool_plan) if tool_plan.expect_calls else None
    if calls:
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        finish = "length" if finish == "length" else "tool_calls"
    if think:  # as llama.cpp's server: the field only when the model reasoned
        message["reasoning_content"] = think
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish,
    }
    if finish == "stop" and done.stop in req.sampling.stop:
        choice["stop_reason"] = done.stop  # the client's stop string that ended it (vLLM's)
    return JsonReply(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "system_fingerprint": None,
            "choices": [choice],
            "usage": _usage(done),
            "timings": timings(done),
        }
    )


def _calls(text: str, plan: tools.ToolPlan) -> list[tools.ToolCall] | None:
    """The tool calls in an answer; a forced call is one even when cut short."""
    if plan.forced and text:
        return tools.forced_calls(text, plan.forced)
    return tools.parse_calls(text)


async def completions(call: Call) -> Reply:
    """`/v1/completions`."""
    req = params.completion_request(call.body)
    runner = await call.models.runner_for(req.model)
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
        return StreamReply(runner, tokens, req.sampling, opening, encode)
    text, done = await _collect(call, runner, tokens, req.sampling)
    body = choice(prefix + text, done.finish_reason)
    body["usage"] = _usage(done)
    return JsonReply(body)


async def _image_prompt(
    call: Call, req: params.ChatRequest, runner: Runner, tool_plan: tools.ToolPlan
) -> tuple[list[int], tuple[str, ...], str, Media]:
    """A chat with images through the model's projector: (placeholder tokens as many as the
    prompt takes, the template's stops, the prompt text, the prompt); 400 `model_not_vision`
    without one."""
    projector = call.models.projector(req.model)
    if projector is None or not isinstance(runner, BatchedRunner):
        raise _not_vision(req.model)
    media, stops, prompt = await runner.media_prompt(
        req.messages,
        list(req.images),
        projector,
        tool_plan.template_tools,
        req.tool_choice,
        req.template_kwargs,
    )
    return [-1] * media.n_tokens, stops, prompt, media  # -1: no cached prompt shares a prefix


def _not_vision(model: str) -> BadRequest:
    return BadRequest(
        f"the model '{model}' does not take images (it has no Vision capability: no image "
        "projector); pick a model with Vision or send text only",
        param="messages",
        code="model_not_vision",
    )


async def _collect(
    call: Call, runner: Runner, tokens: list[int], sampling: Sampling, media: Media | None = None
) -> tuple[str, Finished]:
    cancel = threading.Event()
    parts: list[str] = []
    pieces = runner.stream(tokens, sampling, cancel, media)
    try:
        async for item in pieces:
            if isinstance(item, Finished):
                return "".join(parts), item
            parts.append(item.text)
            if call.client_gone():
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


def _whole(handler: embedding.Handler) -> Callable[[Call], Awaitable[Reply]]:
    """A handler of app.node.embedding (a body in, a JSON answer out) as a route."""

    async def route(call: Call) -> Reply:
        return JsonReply(await handler(call.models, call.body))

    return route


ROUTES: dict[str, Callable[[Call], Awaitable[Reply]]] = {
    "/v1/chat/completions": chat,
    "/v1/completions": completions,
    **{path: _whole(handler) for path, handler in embedding.ROUTES.items()},
}


async def answer(
    models: NodeModels, path: str, raw: bytes, client_gone: Callable[[], bool]
) -> Reply:
    """The reply to POST `path` with the body `raw`; a UserFacingError says why there is none
    (NotFound for a path that is not inference)."""
    handler = ROUTES.get(path)
    if handler is None:
        raise NotFound(f"POST {path}: not found")
    return await handler(Call(models, parse_body(raw), client_gone))


def internal_error() -> UserFacingError:
    """What a client is told when the node fails with a bug (the log has the traceback)."""
    return UserFacingError(
        "internal error in the node; see its log",
        status=500,
        type="server_error",
        code="server_error",
    )
