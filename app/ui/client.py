"""The GUI's one door to the balancer: HTTP /v0 and the /v0/events WebSocket (no Qt here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from app.core.errors import LlmlbError

log = logging.getLogger(__name__)


class ApiError(LlmlbError):
    """A failed call, with the reason the balancer gave (or why it could not be reached)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


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

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call; ApiError with the server's reason on failure."""
        try:
            async with self._http().request(method, self.base_url + path, json=body) as r:
                text = await r.text()
                data = json.loads(text) if text else None
                if r.status >= 400:
                    error = data.get("error", {}) if isinstance(data, dict) else {}
                    raise ApiError(
                        error.get("message") or f"the balancer answered {r.status}",
                        r.status,
                        error.get("code"),
                    )
                return data
        except aiohttp.ClientConnectionError as exc:
            raise ApiError("the balancer did not respond (is llmlb running?)") from exc
        except TimeoutError as exc:
            raise ApiError("the balancer did not answer in time") from exc
        except ValueError as exc:
            raise ApiError("the balancer sent an unreadable answer") from exc

    async def hub(self) -> list[dict[str, Any]]:
        """The Model Hub list."""
        return list(await self.request("GET", "/v0/models/hub"))

    async def models(self) -> list[dict[str, Any]]:
        """Registered models with per-node state."""
        return list(await self.request("GET", "/v0/models"))

    async def nodes(self) -> list[dict[str, Any]]:
        """Nodes with status."""
        return list(await self.request("GET", "/v0/nodes"))

    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Register a model (catalog id or Hugging Face repo/URL)."""
        return dict(await self.request("POST", "/v0/models/register", body))

    async def delete_model(self, name: str) -> None:
        """Unregister a model (nodes delete its files)."""
        await self.request("DELETE", f"/v0/models/{quote(name, safe='/:')}")

    async def events(
        self, on_event: Callable[[dict[str, Any]], None], on_state: Callable[[bool, str], None]
    ) -> None:
        """Follow /v0/events forever, reconnecting with backoff; report connection state."""
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
                            with contextlib.suppress(ValueError):
                                on_event(json.loads(msg.data))
                        elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                            break
                on_state(False, "the balancer closed the connection")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                on_state(False, f"the balancer did not respond ({type(exc).__name__})")
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 10.0)


class ChatStream:
    """One streamed chat completion through /v1 (the same door every client uses)."""

    def __init__(self, client: ApiClient, body: dict[str, Any]) -> None:
        self.client = client
        self.body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        self.node: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    async def deltas(self) -> Any:
        """Yield text as it arrives; raise ApiError with the reason on any failure."""
        http = self.client._http()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        try:
            async with http.post(
                self.client.openai_url + "/chat/completions", json=self.body, timeout=timeout
            ) as r:
                self.node = r.headers.get("x-llmlb-node")
                if r.status >= 400:
                    data = json.loads(await r.text() or "{}")
                    error = data.get("error", {}) if isinstance(data, dict) else {}
                    raise ApiError(
                        error.get("message") or f"the balancer answered {r.status}",
                        r.status,
                        error.get("code"),
                    )
                done = False
                async for raw in r.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    event = json.loads(payload)
                    if "error" in event:
                        raise ApiError(
                            event["error"].get("message", "the stream failed"),
                            code=event["error"].get("code"),
                        )
                    if event.get("usage"):
                        self.usage = event["usage"]
                    for choice in event.get("choices") or []:
                        if choice.get("finish_reason"):
                            self.finish_reason = choice["finish_reason"]
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
                if not done:
                    raise ApiError("the answer was cut off before it ended")
        except aiohttp.ClientConnectionError as exc:
            raise ApiError("the balancer did not respond (is llmlb running?)") from exc
        except ValueError as exc:
            raise ApiError("the stream sent an unreadable event") from exc
