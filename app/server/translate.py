"""The one translation layer's interface: an API other than Chat Completions (Anthropic
Messages, OpenAI Responses) rides on it.

Such an API turns its request into the internal Chat Completions body, which takes the same
path as `/v1/chat/completions` (auth, dispatch, queue, failover, history, metrics: the proxy),
and turns the node's Chat Completions answer, whole or streamed, back into its own shape. The
node never learns which API a client spoke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

CHAT_PATH = "/v1/chat/completions"


class AnswerShape(Protocol):
    """How one request's Chat Completions answer reaches its client in another API's shape.
    Error answers are not its business: the app's error middleware shapes them by path."""

    def whole(self, body: bytes) -> bytes:
        """A node's whole 200 answer (a chat.completion JSON) as the API's answer."""
        ...

    def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A node's SSE stream (bytes as they come, cut anywhere) as the API's events; an
        exception from `chunks` (the node died) propagates."""
        ...

    def failed(self, message: str) -> bytes:
        """The event that ends a stream whose node stopped answering mid-way."""
        ...


# The API's request body in, the internal chat body and the answer's shape out; a
# UserFacingError names what is wrong with the request.
Translate = Callable[[dict[str, Any]], tuple[dict[str, Any], AnswerShape]]
