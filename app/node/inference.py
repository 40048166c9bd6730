"""The node's OpenAI inference, apart from HTTP: a request body in, a typed reply out.

It reaches the node only through `NodeModels` (a runner for a model). Two adapters serve its
replies: the node's own HTTP app (`app.node.api`), to its balancer and to LAN clients, and
`app.local_upstream`, to a balancer in the same process without HTTP (the desktop app's and
`llmlb serve`'s local node), which saves every token a trip through two HTTP stacks on the
same cores. Chat completions are `app.node.chat`'s; the replies' shapes are
`app.node.replies`'.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.errors import BadRequest, NotFound, UserFacingError
from app.node import embedding
from app.node import openai_params as params
from app.node.chat import chat
from app.node.engine.types import Delta, Finished, Item, TokenLogprob
from app.node.logprobs import legacy
from app.node.models import NodeModels
from app.node.replies import (
    MARK,
    Call,
    Generation,
    JsonReply,
    Reply,
    StreamReply,
    check_fits,
    choice_samplings,
    collect,
    event,
    text_events,
    usage,
)

log = logging.getLogger(__name__)

__all__ = ["Call", "JsonReply", "Reply", "StreamReply", "answer", "chat", "parse_body"]


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or BadRequest saying why not."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


async def completions(call: Call) -> Reply:
    """`/v1/completions`: `n` choices of a text's continuation, whole or streamed."""
    req = params.completion_request(call.body)
    runner = await call.models.runner_for(req.model)
    tokens = await runner.text_prompt(req.prompt)
    check_fits(runner, len(tokens), "prompt")  # before a stream starts: a 400, not an event
    generations = [Generation(tokens, s) for s in choice_samplings(req.sampling, req.n)]
    ident = f"cmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    prefix = req.prompt if req.echo else ""
    with_logprobs = req.sampling.logprobs is not None

    def body(choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": req.model,
            "system_fingerprint": None,
            "choices": choices,
        }

    def choice(index: int, text: str, finish: str | None) -> dict[str, Any]:
        return {"index": index, "text": text, "logprobs": None, "finish_reason": finish}

    if req.stream:
        texts = [text_events(body([choice(i, MARK, None)])) for i in range(req.n)]
        offsets = [len(prefix)] * req.n  # where each choice's next token starts in its text

        def logprob_event(index: int, text: str, entries: tuple[TokenLogprob, ...]) -> bytes:
            one = choice(index, text, None)
            one["logprobs"], offsets[index] = legacy(entries, offsets[index])
            return event(body([one]))

        def encode(index: int, item: Item) -> list[bytes]:
            if isinstance(item, Delta):
                if with_logprobs:
                    return [logprob_event(index, item.text, item.logprobs)]
                return [texts[index](item.text)]
            return [event(body([choice(index, "", item.finish_reason)]))]

        def closing(done: list[Finished]) -> list[bytes]:
            return [event({**body([]), "usage": usage(done)})] if req.include_usage else []

        opening = [texts[i](prefix) for i in range(req.n)] if prefix else []
        return StreamReply(runner, generations, opening, encode, closing)
    results = await collect(call, runner, generations)
    choices = []
    for i, r in enumerate(results):
        one = choice(i, prefix + r.text, r.done.finish_reason)
        if with_logprobs:
            one["logprobs"] = legacy(r.logprobs, len(prefix))[0]
        choices.append(one)
    return JsonReply({**body(choices), "usage": usage([r.done for r in results])})


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
