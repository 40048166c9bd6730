"""A node's detail in words: status, address, devices, memory, models, speed (the Nodes page
shows it beside the table)."""

from __future__ import annotations

import time

from app.core.types import NodeStatus
from app.core.wire import NodeJson
from app.ui.fit import device_lines, metrics_of
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.widgets import human_bytes

# A node's status and load in words (its colour alone would not say it).
WORDS = {
    "online": QT_TR_NOOP("online"),
    "offline": QT_TR_NOOP("offline"),
    "pending": QT_TR_NOOP("pending"),
    "registering": QT_TR_NOOP("registering"),
    "ok": QT_TR_NOOP("ok"),
    "high": QT_TR_NOOP("high"),
    "full": QT_TR_NOOP("full"),
}
MODEL_STATES = {  # a model on one node (app/core/types.py ModelState)
    "pending": QT_TR_NOOP("waiting"),
    "downloading": QT_TR_NOOP("downloading"),
    "ready": QT_TR_NOOP("ready"),
    "error": QT_TR_NOOP("error"),
}
LOCAL_NODE_STAYS = QT_TR_NOOP(
    "This computer's node is part of llmlb: it cannot be deleted while llmlb runs. "
    "To stop it serving, pause serving or delete its models."
)


def words(status: str) -> str:
    """A node status or load level in the language in force."""
    return tr(WORDS[status]) if status in WORDS else status


def ago(seconds: float) -> str:
    """How long ago, in the largest unit that says it."""
    if seconds < 90:
        return tr("{n} s ago").format(n=max(0, int(seconds)))
    if seconds < 5400:
        return tr("{n} min ago").format(n=int(seconds // 60))
    return tr("{n} h ago").format(n=int(seconds // 3600))


def status_reason(node: NodeJson, now: float | None = None) -> str:
    """Why the node is in its state, from what its entry carries."""
    now = time.time() if now is None else now
    seen = node["last_seen"]
    heard = ago(now - seen) if seen else None
    status = node["status"]
    if status == NodeStatus.PENDING:
        return tr("it joined and waits for your approval (Approve, below the table)")
    if status == NodeStatus.OFFLINE:
        if heard is None:
            return tr("llmlb has not heard from it since it started")
        return tr("no heartbeat since {ago}: the node stopped or cannot be reached").format(
            ago=heard
        )
    ready, total = node["ready_models"] or [0, 0]
    if status == NodeStatus.REGISTERING:
        return tr("approved; {ready} of {total} of its models ready").format(
            ready=ready, total=total
        )
    if node["metrics_stale"]:
        return tr("its last heartbeat was {ago}: the figures below may be old").format(
            ago=heard or "—"
        )
    return tr("answering; last heartbeat {ago}").format(ago=heard or "—")


def device_use_lines(node: NodeJson) -> list[str]:
    """Each device with its memory free and in use of its total, and how busy it is."""
    metrics = metrics_of(node)
    devices = (metrics.get("devices") or []) if metrics else []
    lines = [tr("GPU: {device}").format(device=line) for line in device_lines(node)]
    if len(devices) != len(lines):
        return lines  # the names it registered with: no figures yet
    out = []
    for line, d in zip(lines, devices, strict=True):
        used = d["total_bytes"] - d["free_bytes"]
        in_use = tr(" — {used} in use").format(used=human_bytes(used) if used > 0 else "0 B")
        out.append(line + in_use if d["total_bytes"] else line)
    return out


def detail_lines(node: NodeJson, local: bool) -> list[str]:
    """The node's detail, a line each (`local`: this computer's running node, which stays)."""
    metrics = metrics_of(node)
    system = metrics["system"] if metrics else {}
    status = tr("status: {status}").format(status=words(str(node["status"])))
    loaded = ", ".join(metrics["loaded_models"] if metrics else []) or tr("none")
    lines = [
        f"{node['name']}  ({node['id']}, {node['kind']})",
        status + (tr("  — metrics are stale") if node["metrics_stale"] else ""),
        tr("why: {reason}").format(reason=status_reason(node)),
        tr("address: {url}").format(url=node["url"]),
        tr("runtime: {version}").format(version=node.get("runtime_version") or "—"),
        *device_use_lines(node),
        tr("memory: {free} free of {total}").format(
            free=human_bytes(system.get("memory_available_bytes")),
            total=human_bytes(system.get("memory_total_bytes")),
        ),
        tr("loaded models: {models}").format(models=loaded),
        tr("requests in flight: {active} of {slots} slots").format(
            active=metrics["active_requests"] if metrics else 0,
            slots=metrics["slots"] if metrics else "?",
        ),
    ]
    speeds = node.get("speed") or {}
    if speeds:  # measured from its answers: what dispatch prefers
        rates = ", ".join(
            tr("{model} {rate} tokens/s").format(model=m, rate=f"{rate:.0f}")
            for m, rate in speeds.items()
        )
        lines.append(tr("speed: {rates}").format(rates=rates))
    progress = metrics["sync_progress"] if metrics else None
    if progress:
        lines.append(
            tr("downloading {model}: {done} of {total}").format(
                model=progress["model_id"],
                done=human_bytes(progress["downloaded_bytes"]),
                total=human_bytes(progress["total_bytes"]),
            )
        )
    if local:
        lines.append(tr(LOCAL_NODE_STAYS))
    for m in node["models"]:
        line = tr("  • {name}: {state}, {done} of {total}").format(
            name=m["name"],
            state=tr(MODEL_STATES.get(m["state"], m["state"])),
            done=human_bytes(m["downloaded_bytes"]),
            total=human_bytes(m["total_bytes"]),
        )
        lines.append(line + (f" — {m['error']}" if m["error"] else ""))
    return lines
