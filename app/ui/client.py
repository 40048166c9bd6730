"""The GUI's one door to the balancer: HTTP /v0 and the /v0/events WebSocket (no Qt here).

This is the only GUI module that names a /v0 path; every call answers the typed shapes of
`app.core.wire` and events arrive as the typed events of `app.core.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote, urlencode

import aiohttp

from app.core.errors import LlmlbError
from app.core.events import Event, decode
from app.core.types import MessageStatus, Role
from app.core.wire import (
    ApiKey,
    Cluster,
    Conversation,
    ConversationDetail,
    HistoryEntry,
    HubEntry,
    JsonObject,
    JsonValue,
    LogsJson,
    Message,
    NewApiKey,
    NodeJson,
    OpenAIModel,
    Quantization,
    QueueJson,
    RegisterAnswer,
    RegisteredModel,
    RequestDetail,
    Serving,
    StatsJson,
)

log = logging.getLogger(__name__)


class ApiError(LlmlbError):
    """A failed call, with the reason the balancer gave (or why it could not be reached)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def error_of(status: int, data: object) -> ApiError:
    """The ApiError for an OpenAI-shaped error answer (or a bare status)."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    message, code = error.get("message"), error.get("code")
    return ApiError(
        message if isinstance(message, str) and message else f"the balancer answered {status}",
        status,
        code if isinstance(code, str) else None,
    )


def _path(segment: str) -> str:
    """A name or id as one path segment (model names keep their '/': routes take them whole)."""
    return quote(segment, safe="/:")


class ApiClient:
    """Async client of one balancer (the embedded one, or a remote headless one).

    `fingerprint` (sha256 hex) pins the balancer's self-made TLS certificate: the embedded
    balancer hands it over, as nobody signed that certificate for a CA check to pass.
    """

    def __init__(
        self,
        base_url: str,
        admin_token: str,
        timeout: float = 15.0,
        fingerprint: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.fingerprint = fingerprint
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def openai_url(self) -> str:
        """What users paste into their tools."""
        return self.base_url + "/v1"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            pin = aiohttp.Fingerprint(bytes.fromhex(self.fingerprint)) if self.fingerprint else True
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self.admin_token}"},
                connector=aiohttp.TCPConnector(ssl=pin),
            )
        return self._session

    async def close(self) -> None:
        """Close connections."""
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: JsonValue = None) -> Any:
        """One /v0 call: the answer's JSON (None when empty); ApiError with the server's reason.

        The answer is trusted to have the shape the contract gives it (this is our balancer,
        reached with its admin token); the typed methods below name that shape."""
        try:
            async with self._http().request(method, self.base_url + path, json=body) as r:
                text = await r.text()
                data = json.loads(text) if text else None
                if r.status >= 400:
                    raise error_of(r.status, data)
                return data
        except aiohttp.ClientConnectionError as exc:
            raise ApiError("the balancer did not respond (is llmlb running?)") from exc
        except TimeoutError as exc:
            raise ApiError("the balancer did not answer in time") from exc
        except ValueError as exc:
            raise ApiError("the balancer sent an unreadable answer") from exc

    # -- models -----------------------------------------------------------------------
    async def hub(self) -> list[HubEntry]:
        """The Model Hub list."""
        return cast(list[HubEntry], await self._call("GET", "/v0/models/hub"))

    async def models(self) -> list[RegisteredModel]:
        """Registered models with per-node state."""
        return cast(list[RegisteredModel], await self._call("GET", "/v0/models"))

    async def openai_models(self) -> list[OpenAIModel]:
        """`GET /v1/models`: what clients see, with each model's effective context."""
        answer = await self._call("GET", "/v1/models")
        return cast(list[OpenAIModel], answer.get("data") if isinstance(answer, dict) else [])

    async def register(
        self,
        *,
        model_id: str | None = None,
        repo: str | None = None,
        filename: str | None = None,
        display_name: str | None = None,
    ) -> RegisterAnswer:
        """Register a model: a catalog id (`model_id`) or a Hugging Face repo or URL."""
        given = dict(model_id=model_id, repo=repo, filename=filename, display_name=display_name)
        body: JsonObject = {k: v for k, v in given.items() if v is not None}
        return cast(RegisterAnswer, await self._call("POST", "/v0/models/register", body))

    async def quantizations(self, model_id: str) -> list[Quantization]:
        """The quantizations a catalog model offers, the catalog's own first."""
        path = f"/v0/models/hub/{_path(model_id)}/quantizations"
        return cast(list[Quantization], await self._call("GET", path))

    async def delete_model(self, name: str) -> None:
        """Unregister a model (nodes delete its files)."""
        await self._call("DELETE", f"/v0/models/{_path(name)}")

    async def retry_model(self, name: str) -> list[str]:
        """Ask the nodes holding a model in error to try it again; the ids of those that do."""
        answer = await self._call("POST", f"/v0/models/{_path(name)}/retry")
        nodes = answer.get("retried_nodes") if isinstance(answer, dict) else None
        return [str(n) for n in nodes] if isinstance(nodes, list) else []

    async def set_gpu_layers(self, name: str, gpu_layers: int | None) -> RegisteredModel:
        """Set how many layers a model offloads to the GPU: -1 all, 0 none (CPU only), N,
        or None for each node's own setting; the model's updated entry."""
        return await self.set_model_settings(name, {"gpu_layers": gpu_layers})

    async def set_model_settings(self, name: str, settings: JsonObject) -> RegisteredModel:
        """Change a model's own settings (`gpu_layers`, `context_size`; None: each node's
        own); the model's updated entry."""
        path = f"/v0/models/{_path(name)}"
        return cast(RegisteredModel, await self._call("PATCH", path, settings))

    # -- nodes, cluster, serving --------------------------------------------------------
    async def nodes(self) -> list[NodeJson]:
        """Nodes with status."""
        return cast(list[NodeJson], await self._call("GET", "/v0/nodes"))

    async def add_external_node(self, name: str, base_url: str, api_key: str | None) -> NodeJson:
        """Add an OpenAI-compatible server as a node; the balancer polls it for its models."""
        body: JsonObject = {"name": name, "base_url": base_url, "api_key": api_key or None}
        return cast(NodeJson, await self._call("POST", "/v0/nodes/external", body))

    async def approve_node(self, node_id: str) -> NodeJson:
        """Let a pending node in."""
        return cast(NodeJson, await self._call("POST", f"/v0/nodes/{_path(node_id)}/approve"))

    async def update_node(self, node_id: str, name: str, tags: list[str]) -> NodeJson:
        """Rename a node and set its tags."""
        body: JsonObject = {"name": name, "tags": list[JsonValue](tags)}
        return cast(NodeJson, await self._call("PUT", f"/v0/nodes/{_path(node_id)}", body))

    async def delete_node(self, node_id: str) -> None:
        """Remove a node (it must join again)."""
        await self._call("DELETE", f"/v0/nodes/{_path(node_id)}")

    async def cluster(self) -> Cluster:
        """The join token, discovery state and nodes found on the LAN."""
        return cast(Cluster, await self._call("GET", "/v0/cluster"))

    async def rotate_join_token(self) -> str:
        """A new join token (nodes that joined keep their own tokens); returns it."""
        answer = await self._call("POST", "/v0/cluster/join-token/rotate")
        return str(answer["join_token"])

    async def serving(self) -> Serving:
        """Whether /v1 inference is paused."""
        return cast(Serving, await self._call("GET", "/v0/serving"))

    async def set_paused(self, paused: bool) -> Serving:
        """Pause or resume /v1 inference."""
        return cast(Serving, await self._call("PUT", "/v0/serving", {"paused": paused}))

    # -- API keys -----------------------------------------------------------------------
    async def api_keys(self) -> list[ApiKey]:
        """The API keys (never their secrets)."""
        return cast(list[ApiKey], await self._call("GET", "/v0/api-keys"))

    async def create_api_key(self, name: str) -> NewApiKey:
        """A new API key; its secret is in this answer only."""
        return cast(NewApiKey, await self._call("POST", "/v0/api-keys", {"name": name}))

    async def revoke_api_key(self, key_id: str) -> None:
        """Revoke an API key at once."""
        await self._call("DELETE", f"/v0/api-keys/{_path(key_id)}")

    # -- conversations ------------------------------------------------------------------
    async def conversations(self) -> list[Conversation]:
        """Saved Playground conversations, the latest first."""
        return cast(list[Conversation], await self._call("GET", "/v0/conversations"))

    async def conversation(self, conversation_id: str) -> ConversationDetail:
        """One conversation with its messages in order."""
        path = f"/v0/conversations/{_path(conversation_id)}"
        return cast(ConversationDetail, await self._call("GET", path))

    async def create_conversation(
        self, title: str, model: str, system_prompt: str, params: JsonObject
    ) -> Conversation:
        """A new conversation."""
        body: JsonObject = {
            "title": title,
            "model": model,
            "system_prompt": system_prompt,
            "params": params,
        }
        return cast(Conversation, await self._call("POST", "/v0/conversations", body))

    async def rename_conversation(self, conversation_id: str, title: str) -> ConversationDetail:
        """Give a conversation a new title."""
        path = f"/v0/conversations/{_path(conversation_id)}"
        return cast(ConversationDetail, await self._call("PUT", path, {"title": title}))

    async def update_conversation(
        self, conversation_id: str, fields: JsonObject
    ) -> ConversationDetail:
        """Save a conversation's model, system prompt or parameters."""
        path = f"/v0/conversations/{_path(conversation_id)}"
        return cast(ConversationDetail, await self._call("PUT", path, fields))

    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and its messages."""
        await self._call("DELETE", f"/v0/conversations/{_path(conversation_id)}")

    async def add_message(
        self,
        conversation_id: str,
        role: Role,
        content: str,
        *,
        attachments: list[JsonValue] | None = None,
        status: MessageStatus = MessageStatus.DONE,
        stats: JsonObject | None = None,
    ) -> Message:
        """Save one complete message at the end of a conversation."""
        body: JsonObject = {"role": str(role), "content": content, "status": str(status)}
        if attachments is not None:
            body["attachments"] = attachments
        if stats is not None:
            body["stats"] = stats
        path = f"/v0/conversations/{_path(conversation_id)}/messages"
        return cast(Message, await self._call("POST", path, body))

    # -- dashboard ----------------------------------------------------------------------
    async def stats(
        self, range_: str = "24h", model: str | None = None, node: str | None = None
    ) -> StatsJson:
        """Traffic and device use over the last hour, day or week."""
        query = {"range": range_} | _present(model=model, node=node)
        return cast(StatsJson, await self._call("GET", "/v0/stats?" + urlencode(query)))

    async def requests(
        self, before: int | None = None, limit: int = 100, node: str | None = None
    ) -> list[HistoryEntry]:
        """The request history, newest first (older than `before`, an id, when given)."""
        query = {"limit": str(limit)} | _present(before=before, node=node)
        return cast(list[HistoryEntry], await self._call("GET", "/v0/requests?" + urlencode(query)))

    async def request(self, request_id: int) -> RequestDetail:
        """One request with its bodies."""
        return cast(RequestDetail, await self._call("GET", f"/v0/requests/{int(request_id)}"))

    async def queue(self) -> QueueJson:
        """Requests waiting for a slot and running, per model and node."""
        return cast(QueueJson, await self._call("GET", "/v0/queue"))

    async def logs(
        self,
        source: str = "balancer",
        level: str | None = None,
        since: float | None = None,
        until: float | None = None,
        q: str | None = None,
        limit: int = 500,
    ) -> LogsJson:
        """Structured log entries of the balancer or one node, newest last."""
        query = {"source": source, "limit": str(limit)}
        query |= _present(level=level, since=since, until=until, q=q)
        return cast(LogsJson, await self._call("GET", "/v0/logs?" + urlencode(query)))

    async def logs_download(self, source: str, fmt: str, **filters: str | float | None) -> str:
        """The same entries as a file's text: `fmt` "text" or "jsonl"."""
        query = {"source": source, "format": fmt} | _present(**filters)
        try:
            async with self._http().get(self.base_url + "/v0/logs?" + urlencode(query)) as r:
                text = await r.text()
                if r.status >= 400:
                    raise error_of(r.status, json.loads(text) if text else None)
                return text
        except aiohttp.ClientConnectionError as exc:
            raise ApiError("the balancer did not respond (is llmlb running?)") from exc
        except TimeoutError as exc:
            raise ApiError("the balancer did not answer in time") from exc

    # -- events -------------------------------------------------------------------------
    async def events(
        self, on_event: Callable[[Event], None], on_state: Callable[[bool, str], None]
    ) -> None:
        """Follow /v0/events forever, reconnecting with backoff; report connection state.

        `on_event` gets each event decoded once, here; kinds this client does not know (a
        newer balancer) are skipped. After a reconnect the caller refetches: events were
        missed while the socket was down."""
        delay = 0.5
        while True:
            try:
                async with self._http().ws_connect(
                    self.base_url + "/v0/events", heartbeat=20
                ) as ws:
                    delay = 0.5
                    on_state(True, "")
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            event = _event(msg.data)
                            if event is not None:
                                on_event(event)
                        elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                            break
                on_state(False, "the balancer closed the connection")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                on_state(False, f"the balancer did not respond ({type(exc).__name__})")
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 10.0)


def _present(**values: str | float | None) -> dict[str, str]:
    """The query parameters that have a value, as text."""
    return {k: str(v) for k, v in values.items() if v is not None and v != ""}


def _event(text: str) -> Event | None:
    """One socket message as its event (None for hello, unknown kinds and junk)."""
    with contextlib.suppress(ValueError):
        message = json.loads(text)
        if isinstance(message, dict):
            return decode(message)
    return None
