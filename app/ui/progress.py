"""A `model.progress` event applied to the GUI's copies of /v0/models and the hub, no fetch.

The balancer folds per-node reports into a model's status with `derive_status`; the GUI folds
the event's report into the model's `nodes` the same way, so the card shows what a refetch
would have shown.
"""

from __future__ import annotations

from app.core.events import ModelProgressed
from app.core.types import HubStatus, Lifecycle, ModelStatus, NodeModelState
from app.core.types import derive_status as derive
from app.core.wire import HubEntry, NodeModelJson, RegisteredModel


def apply_progress(
    event: ModelProgressed,
    models: list[RegisteredModel],
    hub: list[HubEntry],
    live_nodes: set[str],
) -> tuple[Lifecycle | None, Lifecycle] | None:
    """Patch the model the event names; its lifecycle (before, after), or None when the GUI
    does not know the model (then only a fetch can tell)."""
    model = next((m for m in models if m["id"] == event.name), None)
    if model is None:
        return None
    before = model.get("lifecycle_status")
    report = next((n for n in model["nodes"] if n["node_id"] == event.node_id), None)
    if report is None:
        report = NodeModelJson(
            node_id=event.node_id,
            state=event.state,
            downloaded_bytes=0,
            total_bytes=0,
            error=None,
            node_online=event.node_id in live_nodes,
            path=None,
        )
        model["nodes"].append(report)
    report["state"] = event.state
    report["downloaded_bytes"] = event.downloaded_bytes
    report["total_bytes"] = event.total_bytes
    report["error"] = event.error
    report["path"] = event.path
    report["bytes_per_second"] = event.bytes_per_second
    report["retry_at"] = event.retry_at
    status = derive(
        [
            NodeModelState(
                node_id=n["node_id"],
                model=event.name,
                state=n["state"],
                downloaded_bytes=n["downloaded_bytes"],
                total_bytes=n["total_bytes"],
                error=n["error"],
                node_online=n["node_online"],
                bytes_per_second=n.get("bytes_per_second", 0),
                retry_at=n.get("retry_at"),
            )
            for n in model["nodes"]
        ]
    )
    for item in [model, *(h for h in hub if h["id"] == event.name)]:
        _set_status(item, status)
    return (Lifecycle(before) if before else None), Lifecycle(status.lifecycle_status)


def _set_status(item: HubEntry, status: ModelStatus) -> None:
    """The derived fields, as the balancer's hub and /v0/models answers carry them."""
    item["status"] = HubStatus(status.status)
    item["lifecycle_status"] = Lifecycle(status.lifecycle_status)
    item["download_progress"] = status.download_progress
    item["ready_nodes"] = list(status.ready_nodes)
    if status.error:
        item["error"] = status.error
    else:
        item.pop("error", None)
