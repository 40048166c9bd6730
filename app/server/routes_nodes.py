"""/v0/nodes, /v0/health, /v0/cluster: the node protocol and node management."""

from __future__ import annotations

import os

from aiohttp import web

from app.core.errors import BadRequest, Conflict
from app.core.types import NodeStatus
from app.core.wire import Cluster, Serving
from app.server.auth import bearer
from app.server.http import read_object
from app.server.state import balancer

routes = web.RouteTableDef()
# The node inside llmlb holds the admin token and joins again at once, under a new id that old
# chats do not name: deleting it cannot do what a user means by it, so it is refused.
LOCAL_NODE_STAYS = (
    "this computer's node runs inside llmlb and cannot be deleted while llmlb runs (it would "
    "join again at once under a new id); to stop it serving, pause serving or delete its models"
)


@routes.post("/v0/nodes")
async def register(request: web.Request) -> web.Response:
    """A node registers with the join token (pending) or the admin token (approved)."""
    body = await read_object(request)
    answer = await balancer(request).nodes.register(body, bearer(request), request.remote or "")
    return web.json_response(answer, status=201)


@routes.post("/v0/health")
async def health(request: web.Request) -> web.Response:
    """A node's heartbeat, authenticated by its X-Node-Token."""
    body = await read_object(request)
    answer = await balancer(request).nodes.heartbeat(request.headers.get("X-Node-Token"), body)
    return web.json_response(answer)


@routes.get("/v0/nodes")
async def listing(request: web.Request) -> web.Response:
    """Every node with status, metrics and model states."""
    nodes = balancer(request).nodes.nodes.values()
    return web.json_response([n.public() for n in sorted(nodes, key=lambda n: n.created_at)])


@routes.post("/v0/nodes/external")
async def add_external(request: web.Request) -> web.Response:
    """Add any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) as a node."""
    view = await balancer(request).external.add(await read_object(request))
    return web.json_response({"node_id": view.id, **view.public()}, status=201)


@routes.get("/v0/nodes/{node_id}")
async def one(request: web.Request) -> web.Response:
    """One node."""
    return web.json_response(
        balancer(request).nodes.require(request.match_info["node_id"]).public()
    )


@routes.post("/v0/nodes/{node_id}/approve")
async def approve(request: web.Request) -> web.Response:
    """Let a pending node in."""
    view = await balancer(request).nodes.approve(request.match_info["node_id"])
    return web.json_response(view.public())


@routes.put("/v0/nodes/{node_id}")
async def update(request: web.Request) -> web.Response:
    """Rename a node, set its tags (list or comma-separated) and notes."""
    b = balancer(request)
    view = await b.nodes.update(request.match_info["node_id"], await read_object(request))
    return web.json_response(view.public())


@routes.delete("/v0/nodes/{node_id}")
async def delete(request: web.Request) -> web.Response:
    """Forget a node; not this computer's own while it runs (see `LOCAL_NODE_STAYS`)."""
    nodes = balancer(request).nodes
    view = nodes.require(request.match_info["node_id"])
    if view.kind == "local" and view.status != NodeStatus.OFFLINE:
        raise Conflict(LOCAL_NODE_STAYS, code="local_node")
    await nodes.remove(view.id)
    return web.Response(status=204)


@routes.get("/v0/cluster")
async def cluster(request: web.Request) -> web.Response:
    """The join token, how nodes find this balancer, and the TLS certificate they pin."""
    b = balancer(request)
    registered = {n.url for n in b.nodes.nodes.values()}
    answer: Cluster = {
        "join_token": b.nodes.join_token,
        "discovery": b.discovery.running,
        "lan": not b.auth.loopback_only,
        "tls_fingerprint": b.tls_fingerprint,
        "discovered": [d for d in b.discovery.nodes.values() if d["url"] not in registered],
        "lan_url": b.discovery.url,
    }
    return web.json_response(answer)


@routes.get("/v0/serving")
async def serving(request: web.Request) -> web.Response:
    """Whether /v1 inference is paused."""
    answer: Serving = {"paused": balancer(request).paused}
    return web.json_response(answer)


@routes.put("/v0/serving")
async def set_serving(request: web.Request) -> web.Response:
    """Pause or resume /v1 inference (management and downloads go on)."""
    paused = (await read_object(request)).get("paused")
    if not isinstance(paused, bool):
        raise BadRequest("'paused' must be true or false", param="paused")
    balancer(request).paused = paused
    answer: Serving = {"paused": paused}
    return web.json_response(answer)


@routes.post("/v0/cluster/join-token/rotate")
async def rotate(request: web.Request) -> web.Response:
    """A new join token; refused while LLMLB_JOIN_TOKEN fixes it."""
    if os.environ.get("LLMLB_JOIN_TOKEN"):
        raise Conflict("the join token is fixed by LLMLB_JOIN_TOKEN", code="join_token_fixed")
    token = await balancer(request).nodes.rotate_join_token()
    return web.json_response({"join_token": token})
