"""The internal Chat Completions request that another API's request becomes (app.server.translate),
declared once for every API that builds one: its messages, parts, tools and options."""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

from app.core.wire import JsonObject, JsonValue


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
