"""A model's Retry travels as `models.changed` with change "retried": GUIs that only know
model updates still refresh on it."""

from __future__ import annotations

from app.core.events import ModelRetried, ModelUpdated, decode


def test_a_retry_decodes_as_a_model_update() -> None:
    event = ModelRetried("org/m")
    assert event.topic == "models.changed"
    assert event.payload() == {"name": "org/m", "change": "retried"}
    decoded = decode({"type": event.topic, "seq": 3, "data": event.payload()})
    assert decoded == event and isinstance(decoded, ModelUpdated)
