"""/v1/responses: OpenAI's Responses API, on the one translation layer.

A request is translated into Chat Completions (`api_responses_request`), relayed like any
`/v1/chat/completions` request (the proxy: dispatch, failover, history, metrics, API keys),
and its answer translated back (`api_responses_answer`). With `store` (the default, as
OpenAI's) the answer is kept (`app.db.responses`), readable and deletable by id and continued
by `previous_response_id`, each only by the API key that created it. Errors are OpenAI's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from app.core.errors import BadRequest, NotFound
from app.db.responses import ResponseStore
from app.server.api_responses_answer import ResponsesAnswer
from app.server.api_responses_request import to_chat
from app.server.proxy import relay_translated
from app.server.state import BALANCER, balancer
from app.server.translate import AnswerShape

routes = web.RouteTableDef()
RESPONSES = web.AppKey("responses", ResponseStore)
_ID_IN_MESSAGES = 200  # characters of an unknown id echoed back


async def response_store(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the stored responses, for the app's lifetime (writes finish before the
    database closes)."""
    store = ResponseStore(app[BALANCER].store)
    app[RESPONSES] = store
    yield
    await store.drain()


def _owner(request: web.Request) -> str | None:
    """The API key the request used (None: none), whose responses it may read."""
    return balancer(request).auth.check_inference(request)


def _missing(response_id: str, param: str | None = None) -> NotFound:
    code = "previous_response_not_found" if param else "not_found"
    return NotFound(
        f"no response with id '{response_id[:_ID_IN_MESSAGES]}' was found",
        code=code,
        param=param,
    )


@routes.post("/v1/responses")
async def create(request: web.Request) -> web.StreamResponse:
    """A response, streamed or not; stored unless `store` is false."""
    owner = _owner(request)
    store = request.app[RESPONSES]

    async def translate(body: dict[str, Any]) -> tuple[dict[str, Any], AnswerShape]:
        previous = body.get("previous_response_id")
        context = None
        if previous is not None:
            if not isinstance(previous, str) or not previous:
                raise BadRequest(
                    "'previous_response_id' must be a response id", param="previous_response_id"
                )
            stored = await store.get(previous, owner)
            if stored is None:
                raise _missing(previous, "previous_response_id")
            context = stored["context"]
        chat, asked = to_chat(body, context)

        def keep(response: dict[str, Any], reply: dict[str, Any] | None) -> None:
            if asked.store:
                conversation = [*asked.context, reply] if reply is not None else asked.context
                store.put(
                    {
                        "id": response["id"],
                        "owner": owner,
                        "model": asked.model,
                        "created_at": response["created_at"],
                        "body": response,
                        "context": conversation,
                    }
                )

        return chat, ResponsesAnswer(asked, keep)

    return await relay_translated(request, "/v1/responses", translate)


@routes.get("/v1/responses/{response_id}")
async def retrieve(request: web.Request) -> web.Response:
    """A stored response."""
    response_id = request.match_info["response_id"]
    stored = await request.app[RESPONSES].get(response_id, _owner(request))
    if stored is None:
        raise _missing(response_id)
    return web.json_response(stored["body"])


@routes.delete("/v1/responses/{response_id}")
async def delete(request: web.Request) -> web.Response:
    """Forget a stored response."""
    response_id = request.match_info["response_id"]
    if not await request.app[RESPONSES].delete(response_id, _owner(request)):
        raise _missing(response_id)
    return web.json_response({"id": response_id, "object": "response", "deleted": True})
