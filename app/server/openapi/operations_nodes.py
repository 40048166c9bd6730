"""The node protocol and cluster routes of the OpenAPI document (see `operations`)."""

from __future__ import annotations

from app.server.openapi.builders import (
    NO_CONTENT,
    Access,
    Reply,
    Route,
    array,
    boolean,
    error,
    free_object,
    integer,
    json_reply,
    nullable,
    obj,
    ref,
    string,
)

NODE_ROUTES: tuple[Route, ...] = (
    # Nodes and the cluster.
    Route(
        "POST",
        "/v0/nodes",
        "A node registers: with the join token it waits for approval, with the admin token "
        "it is approved",
        "nodes",
        Access.JOIN,
        (
            json_reply(
                201,
                "Registered",
                obj(
                    {
                        "node_id": string(),
                        "status": string(),
                        "node_token": string(),
                        "manifest_version": string(),
                    },
                    ("node_id", "status", "node_token"),
                ),
            ),
        ),
        body=ref("NodeRegistration"),
    ),
    Route(
        "POST",
        "/v0/nodes/challenge",
        "The balancer proves it knows the join token, before a node sends it: "
        "`proof` = hex(HMAC-SHA256(join token, `llmlb-join-proof:{nonce}@{address}`))",
        "nodes",
        Access.PUBLIC,
        (
            json_reply(
                200,
                "The proof, and the address it was made for",
                obj({"proof": string(), "address": string()}),
            ),
        ),
        body=obj(
            {"nonce": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"}}, required=("nonce",)
        ),
        errors=(400,),
    ),
    Route(
        "POST",
        "/v0/health",
        "A node's heartbeat",
        "nodes",
        Access.NODE,
        (
            json_reply(
                200,
                "The node's status and the manifest version",
                obj({"status": string(), "manifest_version": string()}),
            ),
        ),
        body=ref("Heartbeat"),
    ),
    Route(
        "GET",
        "/v0/nodes",
        "Every node with status, metrics and model states",
        "nodes",
        Access.ADMIN,
        (json_reply(200, "Nodes", array(ref("Node"))),),
    ),
    Route(
        "POST",
        "/v0/nodes/external",
        "Add any OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) as a node",
        "nodes",
        Access.ADMIN,
        (json_reply(201, "The new node", {"allOf": [ref("Node"), obj({"node_id": string()})]}),),
        body=ref("ExternalNode"),
    ),
    Route(
        "GET",
        "/v0/nodes/{node_id}",
        "One node",
        "nodes",
        Access.ADMIN,
        (json_reply(200, "The node", "Node"),),
        errors=(404,),
    ),
    Route(
        "POST",
        "/v0/nodes/{node_id}/approve",
        "Let a pending node in",
        "nodes",
        Access.ADMIN,
        (json_reply(200, "The node", "Node"),),
        errors=(404,),
    ),
    Route(
        "PUT",
        "/v0/nodes/{node_id}",
        "Rename a node, set its tags and notes",
        "nodes",
        Access.ADMIN,
        (json_reply(200, "The node", "Node"),),
        body=ref("NodeUpdate"),
        errors=(404,),
    ),
    Route(
        "DELETE",
        "/v0/nodes/{node_id}",
        "Forget a node (it must register again)",
        "nodes",
        Access.ADMIN,
        (NO_CONTENT,),
        errors=(404,),
    ),
    Route(
        "GET",
        "/v0/cluster",
        "The join token and how nodes find this balancer",
        "nodes",
        Access.ADMIN,
        (
            json_reply(
                200,
                "The cluster",
                obj(
                    {
                        "join_token": string(),
                        "discovery": boolean(),
                        "lan": boolean(),
                        "discovered": array(free_object()),
                        "tls_fingerprint": nullable(
                            string("SHA-256 of the balancer's certificate (null without TLS)")
                        ),
                        "lan_url": nullable(
                            string("The root URL announced on the LAN (null when not announced)")
                        ),
                    },
                    ("join_token", "discovery", "lan"),
                ),
            ),
        ),
    ),
    Route(
        "POST",
        "/v0/cluster/join-token/rotate",
        "A new join token (refused while LLMLB_JOIN_TOKEN fixes it)",
        "nodes",
        Access.ADMIN,
        (json_reply(200, "The new token", obj({"join_token": string()}, ("join_token",))),),
        errors=(409,),
    ),
    Route(
        "GET",
        "/v0/serving",
        "Whether /v1 inference is paused",
        "serving",
        Access.ADMIN,
        (json_reply(200, "The state", obj({"paused": boolean()}, ("paused",))),),
    ),
    Route(
        "PUT",
        "/v0/serving",
        "Pause or resume /v1 inference (management and downloads go on)",
        "serving",
        Access.ADMIN,
        (json_reply(200, "The new state", obj({"paused": boolean()}, ("paused",))),),
        body=obj({"paused": boolean()}, ("paused",)),
    ),
    Route(
        "GET",
        "/v0/events",
        "A WebSocket that pushes every event as JSON `{type, seq, data}`, `seq` one more per "
        "event (send the upgrade headers)",
        "events",
        Access.EVENTS,
        (
            Reply(101, "Switching to the WebSocket protocol"),
            error(400, "Not a WebSocket upgrade request"),
        ),
    ),
    Route(
        "POST",
        "/v0/events/ticket",
        "A one-time ticket for a browser to open the events WebSocket (`?ticket=`, 30 s)",
        "events",
        Access.ADMIN,
        (json_reply(200, "The ticket", obj({"ticket": string(), "expires_in": integer()})),),
    ),
)
