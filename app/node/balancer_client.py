"""The node's side of the node protocol: register, heartbeat, read the model list and manifests.

Every answer is read with a size cap before it is parsed: a balancer found on the LAN may be
anyone, and an endless body must not fill the node's memory.

Over HTTPS the balancer's certificate is self-made: the node reads its fingerprint from the
connection that carried the join-token proof, checks that the proof names that fingerprint,
and from then on pins it (every request passes `ssl=aiohttp.Fingerprint`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import aiohttp

from app.core.errors import LlmlbError
from app.core.node_protocol import (
    HeartbeatAnswer,
    HeartbeatBody,
    RegistrationAnswer,
    RegistrationBody,
)
from app.core.types import NodeStatus, enum_member
from app.node.manifest import ManifestError, parse_model_list

log = logging.getLogger(__name__)
ANSWER_LIMIT = 1024 * 1024  # register, heartbeat, manifest, challenge: a few KiB in practice
MODEL_LIST_LIMIT = 16 * 1024 * 1024  # /v0/models carries every node's state per model
PROOF_PREFIX = "llmlb-join-proof:"
VERSION_LIMIT = 128  # a manifest version is a short hash


class BalancerUnavailable(LlmlbError):
    """The balancer did not answer, or refused us."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BalancerNotTrusted(BalancerUnavailable):
    """The balancer could not prove it knows the join token: it gets no secret from us."""


def join_proof(join_token: str, nonce: str, address: str, fingerprint: str | None = None) -> str:
    """hex(HMAC-SHA256(join token, "llmlb-join-proof:" + nonce + "@" + address)), as both
    sides compute it; `address` is the `ip:port` the balancer was reached on. Over TLS
    "#" + `fingerprint` (sha256 hex of the balancer's certificate) ends the message."""
    message = f"{PROOF_PREFIX}{nonce}@{address}"
    if fingerprint:
        message += f"#{fingerprint}"
    return hmac.new(join_token.encode(), message.encode(), hashlib.sha256).hexdigest()


def dialled_address(base_url: str) -> str | None:
    """`ip:port` of a URL whose host is an IP literal (what mDNS gives), else None."""
    parts = urlsplit(base_url)
    try:
        ip = ipaddress.ip_address(parts.hostname or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


class BalancerClient:
    """HTTP(S) client for one balancer, carrying this node's token once registered.

    `fingerprint` pins the balancer's TLS certificate (sha256 hex): set ahead of time, kept
    from an earlier join, or learnt by `prove` over HTTPS. A pinned client never talks plain
    HTTP, and over HTTPS nothing but the challenge goes out before a pin exists.
    """

    def __init__(
        self, base_url: str, timeout: float = 10.0, fingerprint: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_token: str | None = None
        self.fingerprint = fingerprint
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

    @property
    def https(self) -> bool:
        """Whether the balancer is reached over TLS."""
        return self.base_url.lower().startswith("https://")

    def _ssl(self) -> aiohttp.Fingerprint | bool:
        """The pin every request but the challenge goes out with; refuses what is not pinned."""
        if not self.https:
            if self.fingerprint:
                raise BalancerNotTrusted(
                    f"this node pinned its balancer's TLS certificate and will not talk to "
                    f"{self.base_url} over plain HTTP (start the balancer with --tls, or "
                    "delete the node's node.json to join a balancer without TLS)"
                )
            return True  # unused for http://
        if not self.fingerprint:
            raise BalancerNotTrusted(
                f"{self.base_url} has not proved its certificate yet: nothing is sent to it"
            )
        return aiohttp.Fingerprint(bytes.fromhex(self.fingerprint))

    async def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | RegistrationBody | HeartbeatBody | None = None,
        headers: dict[str, str] | None = None,
        limit: int = ANSWER_LIMIT,
        ssl: aiohttp.Fingerprint | bool | None = None,
    ) -> object:
        """The answer's JSON, of any shape: each caller checks the shape it needs."""
        pin = self._ssl() if ssl is None else ssl
        try:
            async with self._http().request(
                method,
                self.base_url + path,
                json=body,
                headers=self._headers(headers),
                allow_redirects=False,  # a redirect would carry our secrets elsewhere
                ssl=pin,
            ) as response:
                data = json.loads(await _read_capped(response, limit))
                if response.status >= 400:
                    error = data.get("error") if isinstance(data, dict) else None
                    message = error.get("message") if isinstance(error, dict) else None
                    text = str(message)[:200] if message else "no reason given"
                    raise BalancerUnavailable(
                        f"balancer answered {response.status}: {text}", response.status
                    )
                if response.status >= 300:
                    raise BalancerUnavailable(f"balancer answered {response.status}")
                return data
        except ValueError as exc:  # json.loads's error, UnicodeDecodeError included
            raise BalancerUnavailable("the balancer's answer is not JSON") from exc
        except aiohttp.ServerFingerprintMismatch as exc:
            expected = pin.fingerprint.hex() if isinstance(pin, aiohttp.Fingerprint) else ""
            raise BalancerNotTrusted(self._changed(expected, exc.got.hex())) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BalancerUnavailable(f"balancer unreachable: {type(exc).__name__}") from exc

    async def _shown_certificate(self) -> str:
        """sha256 hex of the certificate the balancer shows, learnt from the TLS handshake alone.

        aiohttp compares a pin right after the handshake, before it writes a request: pinning a
        fingerprint no certificate has makes it hand back the real one (`got`) having sent
        nothing. Nobody signed the certificate, so there is nothing else to check it against.
        """
        nothing = aiohttp.Fingerprint(bytes(32))
        try:
            async with self._http().get(self.base_url + "/", ssl=nothing, allow_redirects=False):
                pass
        except aiohttp.ServerFingerprintMismatch as exc:
            return exc.got.hex()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BalancerUnavailable(f"balancer unreachable: {type(exc).__name__}") from exc
        raise BalancerNotTrusted(f"{self.base_url} showed no usable TLS certificate")

    async def prove(self, join_token: str, bound: bool = False) -> None:
        """Ask the balancer to prove it knows the join token, before we send it.

        `bound`: the proof must be for the very address we dialled (a balancer found by mDNS,
        where an impostor could relay our nonce to the real one). A URL the user gave may sit
        behind a tunnel or a port mapping, so there the proof's own address is taken.
        Raises BalancerNotTrusted for a wrong or missing proof, BalancerUnavailable when the
        balancer does not answer.
        """
        nonce = secrets.token_urlsafe(32)
        peer: str | None = None
        if self.https:
            # The challenge goes over a connection pinned to the certificate the balancer
            # shows (or the one pinned before): the proof must name that very certificate.
            peer = self.fingerprint or await self._shown_certificate()
            pin: aiohttp.Fingerprint | bool = aiohttp.Fingerprint(bytes.fromhex(peer))
        else:
            pin = self._ssl()  # a pinned node refuses plain HTTP before anything goes out
        try:
            data = await self._request("POST", "/v0/nodes/challenge", {"nonce": nonce}, ssl=pin)
        except BalancerUnavailable as exc:
            if exc.status is None or exc.status >= 500:
                raise
            raise BalancerNotTrusted(
                f"{self.base_url} did not prove it knows the join token ({exc})", exc.status
            ) from exc
        proof = data.get("proof") if isinstance(data, dict) else None
        address = data.get("address") if isinstance(data, dict) else None
        if not isinstance(proof, str) or not isinstance(address, str) or len(address) > 100:
            raise BalancerNotTrusted(f"{self.base_url} gave no proof of the join token")
        if bound and address != dialled_address(self.base_url):
            raise BalancerNotTrusted(
                f"{self.base_url} passed on a proof made by the balancer at {address!r}: "
                "an impostor relaying our challenge"
            )
        expected = join_proof(join_token, nonce, address, peer)
        if not hmac.compare_digest(proof.encode(), expected.encode()):
            raise BalancerNotTrusted(
                f"{self.base_url} gave a wrong proof of the join token"
                + (" for the TLS certificate it showed" if self.https else "")
                + ": it is not our balancer"
            )
        if peer is not None and not self.fingerprint:
            log.info("pinned the TLS certificate of %s: sha256 %s", self.base_url, peer)
            self.fingerprint = peer

    def _changed(self, expected: str, got: str) -> str:
        """Why a certificate other than the pinned one is refused, and what the admin can do."""
        if not self.fingerprint:  # it changed between the handshake we read and the challenge
            return f"{self.base_url} showed one TLS certificate, then another: refusing both"
        return (
            f"{self.base_url} showed a TLS certificate (sha256 {got}) other than the one this "
            f"node pinned (sha256 {expected}): refusing it. If the balancer's certificate "
            "really changed, start the node with --balancer-fingerprint and the new one "
            "(GET /v0/cluster shows it)"
        )

    async def register(self, body: RegistrationBody, credential: str) -> RegistrationAnswer:
        """POST /v0/nodes with the join token (or the admin token for the local node). A
        status this node does not know reads as pending: it syncs nothing until approved."""
        data = await self._request(
            "POST", "/v0/nodes", body, {"Authorization": f"Bearer {credential}"}
        )
        node_id = data.get("node_id") if isinstance(data, dict) else None
        token = data.get("node_token") if isinstance(data, dict) else None
        if not (
            isinstance(data, dict)
            and isinstance(node_id, str)
            and isinstance(token, str)
            and 0 < len(node_id) <= 128
            and 0 < len(token) <= 512
        ):
            raise BalancerUnavailable("the balancer's registration answer has no node id or token")
        self.node_token = token
        balancer_token = data.get("balancer_token")
        return {
            "node_id": node_id,
            "status": enum_member(NodeStatus, data.get("status")) or NodeStatus.PENDING,
            "node_token": token,
            "balancer_token": balancer_token if isinstance(balancer_token, str) else None,
            "manifest_version": _version(data.get("manifest_version")),
        }

    async def heartbeat(self, body: HeartbeatBody) -> HeartbeatAnswer:
        """POST /v0/health; the answer carries our status and the manifest version (None for
        either when the balancer sent something else)."""
        data = await self._request("POST", "/v0/health", body)
        if not isinstance(data, dict):
            raise BalancerUnavailable("the balancer's heartbeat answer is not a JSON object")
        return {
            "status": enum_member(NodeStatus, data.get("status")),
            "manifest_version": _version(data.get("manifest_version")),
        }

    async def model_names(self) -> list[str]:
        """Every registered model (the node's desired set); bad names are left out, logged."""
        data = await self._request("GET", "/v0/models", limit=MODEL_LIST_LIMIT)
        try:
            names, refused = parse_model_list(data)
        except ManifestError as exc:
            raise BalancerUnavailable(f"the balancer's model list is unusable: {exc}") from exc
        for reason in refused[:5]:
            log.warning("ignoring a model the balancer listed: %s", reason)
        return names

    async def manifest(self, name: str) -> object:
        """What to download for one model: the raw answer, for `parse_manifest` to check."""
        path = f"/v0/models/registry/{quote(name, safe='/:')}/manifest.json"
        return await self._request("GET", path)


def _version(value: object) -> str | None:
    """A manifest version as the balancer sends it (a short string), else None."""
    return value if isinstance(value, str) and len(value) <= VERSION_LIMIT else None


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body; BalancerUnavailable once it passes `limit` bytes."""
    too_big = BalancerUnavailable(f"the balancer's answer is over the {limit} byte limit")
    length = response.content_length
    if length is not None and length > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
