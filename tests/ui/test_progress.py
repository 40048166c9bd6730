"""A model.progress event folds into the GUI's copy of a model as the balancer would fold it."""

from __future__ import annotations

from typing import Any

from app.core.events import ModelProgressed, decode
from app.core.types import HubStatus, Lifecycle, ModelState
from app.ui.progress import apply_progress


def registered(name: str) -> dict[str, Any]:
    """A just-registered model as /v0/models shows it (only the fields the patch touches)."""
    return {
        "id": name,
        "name": name,
        "status": HubStatus.AVAILABLE,
        "lifecycle_status": Lifecycle.REGISTERED,
        "download_progress": None,
        "ready_nodes": [],
        "nodes": [],
    }


def progress(state: ModelState, done: int, error: str | None = None) -> ModelProgressed:
    return ModelProgressed("m", "n1", state, done, 100, error, "/models/m.gguf" if done else None)


def test_progress_then_ready_then_error_patch_the_model_and_its_hub_entry() -> None:
    model = registered("m")
    hub_entry = {k: v for k, v in model.items() if k != "nodes"}
    models: Any = [model]
    hub: Any = [hub_entry, registered("other")]
    change = apply_progress(progress(ModelState.DOWNLOADING, 40), models, hub, {"n1"})
    assert change == (Lifecycle.REGISTERED, Lifecycle.PENDING)
    for item in (model, hub_entry):
        assert item["status"] == HubStatus.DOWNLOADING
        assert item["download_progress"] == {
            "percent": 40.0,
            "bytes_downloaded": 40,
            "bytes_total": 100,
            "bytes_per_second": 0,
            "seconds_left": None,
            "retry_at": None,
        }
    assert hub[1]["status"] == HubStatus.AVAILABLE  # only the model the event names
    change = apply_progress(progress(ModelState.READY, 100), models, hub, {"n1"})
    assert change == (Lifecycle.PENDING, Lifecycle.READY)
    assert model["ready_nodes"] == ["n1"] and model["nodes"][0]["path"] == "/models/m.gguf"
    change = apply_progress(progress(ModelState.ERROR, 0, "disk full"), models, hub, {"n1"})
    assert change == (Lifecycle.READY, Lifecycle.ERROR)
    assert hub_entry["error"] == "disk full" and len(model["nodes"]) == 1


def test_ready_on_a_node_that_is_not_live_does_not_make_the_model_ready() -> None:
    models: Any = [registered("m")]
    change = apply_progress(progress(ModelState.READY, 100), models, [], live_nodes=set())
    assert change == (Lifecycle.REGISTERED, Lifecycle.REGISTERED)


def test_a_model_the_gui_does_not_know_is_left_to_a_fetch() -> None:
    assert apply_progress(progress(ModelState.DOWNLOADING, 1), [], [], {"n1"}) is None


def test_the_speed_and_the_next_try_of_an_event_reach_the_card() -> None:
    """A progress event's speed and retry time fold in as a refetch would show them."""
    model = registered("m")
    models: Any = [model]
    flowing = ModelProgressed("m", "n1", ModelState.DOWNLOADING, 40, 100, None, None, 20)
    apply_progress(flowing, models, [], {"n1"})
    assert model["download_progress"]["bytes_per_second"] == 20
    assert model["download_progress"]["seconds_left"] == 3  # 60 bytes at 20 B/s
    waiting = ModelProgressed(
        "m", "n1", ModelState.DOWNLOADING, 40, 100, "HTTP 503", None, 0, 1234.5
    )
    wire = decode({"type": waiting.topic, "data": waiting.payload(), "seq": 1})
    assert wire == waiting  # the speed and the time survive the events websocket
    apply_progress(waiting, models, [], {"n1"})
    assert model["download_progress"]["retry_at"] == 1234.5
    assert model["error"] == "HTTP 503" and model["nodes"][0]["retry_at"] == 1234.5
