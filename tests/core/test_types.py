"""Folding nodes' reports into one model status, as the Hub and /v0/models show it."""

from __future__ import annotations

from app.core.types import HubStatus, Lifecycle, ModelState, NodeModelState, derive_status


def report(state: ModelState, error: str | None = None, node: str = "n1") -> NodeModelState:
    return NodeModelState("m", state, 10, 100, error=error, node_id=node, node_online=True)


def test_a_download_waiting_to_retry_is_still_a_download_that_says_why() -> None:
    status = derive_status([report(ModelState.DOWNLOADING, "download interrupted; retrying")])
    assert (status.status, status.lifecycle_status) == (HubStatus.DOWNLOADING, Lifecycle.PENDING)
    assert status.error == "download interrupted; retrying"
    assert status.download_progress is not None and status.download_progress["percent"] == 10.0


def test_a_failure_on_one_node_does_not_hide_a_download_on_another() -> None:
    status = derive_status(
        [report(ModelState.ERROR, "bad file"), report(ModelState.DOWNLOADING, node="n2")]
    )
    assert status.lifecycle_status == Lifecycle.PENDING and status.error is None
