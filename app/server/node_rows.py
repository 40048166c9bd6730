"""Nodes read back from the database: rows to views, cleaned again; external keys to the vault."""

from __future__ import annotations

import json

from app.core.errors import BadRequest
from app.core.types import ModelState, NodeModelState, NodeStatus, enum_member
from app.core.vault import Vault
from app.core.wire import NodeInfo
from app.db.rows import NodeRow, StoredNode
from app.server.heartbeat import clean_int, node_name, registration_info
from app.server.node_view import NodeView

EXTERNAL_KEY = "external-api-key:"  # + node id: an external server's API key in the vault


def view_from_row(
    row: StoredNode, vault: Vault | None, balancer_token: str
) -> tuple[NodeView, bool]:
    """A stored node, offline until it beats (pending stays pending), and whether its row must
    be saved again (its API key just moved from the database to the vault)."""
    kind = row["kind"]
    api_key, moved = _external_key(row, vault)
    view = NodeView(
        id=row["id"],
        name=node_name(row["name"]) or row["url"],
        url=row["url"],
        token_hash=row["token_hash"] or "",
        kind=kind,
        # Stored nodes are offline until they beat; pending stays pending.
        status=NodeStatus.PENDING if row["status"] == NodeStatus.PENDING else NodeStatus.OFFLINE,
        created_at=row["created_at"],
        last_seen=row["last_seen"],
        info=_stored_info(kind, row["info"]),
        tags=json.loads(row["tags"] or "[]"),
        notes=row["notes"] or "",
        api_key=api_key,
        balancer_token=balancer_token,
        key_in_row=vault is None,
    )
    for m in row["models"]:
        view.models[m["model"]] = NodeModelState(
            model=m["model"],
            state=enum_member(ModelState, m["state"]) or ModelState.PENDING,
            downloaded_bytes=m["downloaded_bytes"],
            total_bytes=m["total_bytes"],
            error=m["error"],
            node_id=view.id,
            node_online=False,
        )
    return view, moved


def _external_key(row: NodeRow, vault: Vault | None) -> tuple[str | None, bool]:
    """An external node's API key: from the vault, moving one the database held there."""
    key = row["api_key"]
    if vault is None:
        return key or None, False
    name = f"{EXTERNAL_KEY}{row['id']}"
    moved = bool(key)
    if key:
        vault.set(name, key)
    return vault.get(name), moved


def _stored_info(kind: str, text: str | None) -> NodeInfo:
    """A node's info as stored, cleaned again (rows written before the checks existed)."""
    try:
        raw = json.loads(text or "{}")
        if not isinstance(raw, dict):
            return {}
        if kind == "external":
            slots = clean_int(raw.get("slots"))
            return {"runtime_version": "external", "slots": slots or None}
        return registration_info(raw)
    except (ValueError, BadRequest):
        return {}
