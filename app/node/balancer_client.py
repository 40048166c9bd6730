"""The node's side of the node protocol: register, heartbeat, read the model list and manifests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from app.core.errors import LlmlbError


class BalancerUnavailable(LlmlbError):
    """The balancer did not answer, or refused us."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BalancerClient:
    """HTTP client for one balancer, carrying this node's token once registered."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_token: str | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.node_token:
            headers["X-Node-Token"] = self.node_token
        return headers

    async def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        try:
            async with self._http().request(
                method, self.base_url + path, json=body, headers=self._headers(headers)
            ) as response:
                data = await response.json(content_type=None)
                if response.status >= 400:
                    error = data.get("error") if isinstance(data, dict) else None
                    message = error.get("message") if isinstance(error, dict) else None
                    raise BalancerUnavailable(
                        f"balancer answered {response.status}: {message or 'no reason given'}",
                        response.status,
                    )
                return data
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BalancerUnavailable(f"balancer unreachable: {type(exc).__name__}") from exc

    async def register(self, body: dict[str, Any], credential: str) -> dict[str, Any]:
        """POST /v0/nodes with the join token (or the admin token for the local node)."""
        data = await self._request(
            "POST", "/v0/nodes", body, {"Authorization": f"Bearer {credential}"}
        )
        self.node_token = data["node_token"]
        return dict(data)

    async def heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v0/health; the answer carries our status and the manifest version."""
        return dict(await self._request("POST", "/v0/health", body))

    async def model_names(self) -> list[str]:
        """Every registered model (the node's desired set)."""
        data = await self._request("GET", "/v0/models")
        return [item["id"] for item in data]

    async def manifest(self, name: str) -> dict[str, Any]:
        """What to download for one model."""
        path = f"/v0/models/registry/{quote(name, safe='/:')}/manifest.json"
        return dict(await self._request("GET", path))
