"""POST /v0/nodes/challenge: the balancer proves it knows the join token, without sending it.

A node that found a balancer by mDNS sends a fresh nonce and checks the answer,
hex(HMAC-SHA256(join token, "llmlb-join-proof:" + nonce + "@" + address)), where address is
the `ip:port` the connection reached the balancer on (its own socket's, also in the answer),
before it sends the join token itself: an impostor announcing `_llmlb._tcp` on the LAN learns
nothing it can reuse, and relaying the nonce to the real balancer yields a proof for the real
balancer's address, not the impostor's. Over TLS the message ends with "#" + the sha256 hex of
our certificate: a man in the middle terminating TLS with a certificate of its own cannot make
a proof for it, so the node pins the certificate this proof names. The node
computes the same proof in `app.node.balancer_client.join_proof` (the balancer never imports
the node package); README.md documents the route.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from aiohttp import web

from app.core.errors import BadRequest
from app.server.http import read_object
from app.server.state import balancer

routes = web.RouteTableDef()
PROOF_PREFIX = "llmlb-join-proof:"
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_CHALLENGE_BODY_LIMIT = 1024  # a nonce of at most 128 characters, in a small object


@routes.post("/v0/nodes/challenge")
async def challenge(request: web.Request) -> web.Response:
    """Answer a node's nonce with the proof; needs no auth (it reveals nothing reusable)."""
    body = await read_object(request, _CHALLENGE_BODY_LIMIT)
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
        raise BadRequest("'nonce' must be 16 to 128 URL-safe characters", param="nonce")
    token = balancer(request).nodes.join_token
    address = _own_address(request)
    message = f"{PROOF_PREFIX}{nonce}@{address}"
    fingerprint = balancer(request).tls_fingerprint
    if fingerprint:
        message += f"#{fingerprint}"
    proof = hmac.new(token.encode(), message.encode(), hashlib.sha256)
    return web.json_response({"proof": proof.hexdigest(), "address": address})


def _own_address(request: web.Request) -> str:
    """`ip:port` this connection reached us on: our own socket, never what the client says.

    It is inside the proof, so a LAN impostor that relays a node's nonce to us gets a proof
    for our address, which the node (dialling the impostor's) refuses.
    """
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sock, tuple) or len(sock) < 2:
        return ""
    host = str(sock[0]).removeprefix("::ffff:")  # an IPv4 client on a dual-stack socket
    return f"[{host}]:{sock[1]}" if ":" in host else f"{host}:{sock[1]}"
