"""The one translation layer's interface: an API other than Chat Completions (Anthropic
Messages, OpenAI Responses) rides on it.

Such an API turns its request into the internal Chat Completions body, which takes the same
path as `/v1/chat/completions` (auth, dispatch, queue, failover, history, metrics: the proxy),
and turns the node's Chat Completions answer, whole or streamed, back into its own shape. The
node never learns which API a client spoke. `ChatBody` and its parts below are the internal
body's shape, declared once for every API that builds one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Literal, NotRequired, Protocol, TypeAlias, TypedDict

from app.core.wire import JsonObject, JsonValue

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


# The API's request body in (JSON as the client sent it, to be checked), the internal chat
# body (a `ChatBody`, or any mapping of that shape) and the answer's shape out; a
# UserFacingError names what is wrong with the request.
Translate = Callable[[JsonObject], tuple[Mapping[str, object], AnswerShape]]


# -- the internal Chat Completions body ------------------------------------------------------
class ChatImageUrl(TypedDict):
    """Where an image is: an http(s) URL or a data: URL."""

    url: str


class ChatTextPart(TypedDict):
    """A text part of a user message."""

    type: Literal["text"]
    text: str


class ChatImagePart(TypedDict):
    """An image part of a user message."""

    type: Literal["image_url"]
    image_url: ChatImageUrl


ChatPart: TypeAlias = ChatTextPart | ChatImagePart


class ChatFunctionCall(TypedDict):
    """The function a tool call names, and its arguments as JSON text."""

    name: str
    arguments: str


class ChatToolCall(TypedDict):
    """One tool call of an assistant message."""

    id: str
    type: Literal["function"]
    function: ChatFunctionCall


class ChatSystemMessage(TypedDict):
    """A system (or developer) message."""

    role: Literal["system"]
    content: str


class ChatUserMessage(TypedDict):
    """A user message: text, or parts (text and images)."""

    role: Literal["user"]
    content: str | list[ChatPart]


class ChatAssistantMessage(TypedDict):
    """An assistant message: its text (None when it only calls tools) and tool calls."""

    role: Literal["assistant"]
    content: str | None
    tool_calls: NotRequired[list[ChatToolCall]]


class ChatToolMessage(TypedDict):
    """A tool's result, answering the call `tool_call_id`."""

    role: Literal["tool"]
    tool_call_id: str
    content: str


ChatMessage: TypeAlias = (
    ChatSystemMessage | ChatUserMessage | ChatAssistantMessage | ChatToolMessage
)


class ChatFunction(TypedDict):
    """A function tool the model may call: its name, JSON schema and description."""

    name: str
    parameters: JsonObject
    description: NotRequired[str]


class ChatTool(TypedDict):
    """A tool offered to the model (functions only)."""

    type: Literal["function"]
    function: ChatFunction


class ChatNamedFunction(TypedDict):
    """The function a forced tool choice names."""

    name: str


class ChatNamedTool(TypedDict):
    """`tool_choice` forcing one function."""

    type: Literal["function"]
    function: ChatNamedFunction


ChatToolChoice: TypeAlias = Literal["auto", "required", "none"] | ChatNamedTool


class ChatJsonSchema(TypedDict):
    """A named JSON schema the answer must follow."""

    name: str
    schema: JsonObject


class ChatResponseFormat(TypedDict):
    """`response_format` of a structured answer."""

    type: Literal["json_schema"]
    json_schema: ChatJsonSchema


class ChatStreamOptions(TypedDict):
    """`stream_options`: the last event carries the usage."""

    include_usage: bool


class ChatBody(TypedDict):
    """The internal Chat Completions request another API's request becomes. Sampling values
    are passed on as the client sent them: the node checks their ranges and names them."""

    model: str
    messages: list[ChatMessage]
    max_tokens: NotRequired[int]
    stream: NotRequired[bool]
    stream_options: NotRequired[ChatStreamOptions]
    stop: NotRequired[list[str]]
    temperature: NotRequired[JsonValue]
    top_p: NotRequired[JsonValue]
    top_k: NotRequired[JsonValue]
    tools: NotRequired[list[ChatTool]]
    tool_choice: NotRequired[ChatToolChoice]
    response_format: NotRequired[ChatResponseFormat]
    chat_template_kwargs: NotRequired[JsonObject]
