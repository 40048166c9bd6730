"""The Overview as a dashboard: after real traffic through the real balancer it shows the last
hour in figures and the last day in graphs (said in words too), and it warns, in plain words,
about what needs a look, in a list the user dismisses."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QPushButton, QWidget

from app.core.types import Lifecycle, NodeStatus
from app.core.wire import NodeJson, RegisteredModel, StatsBucket, StatsJson
from app.ui.alerts import Alert, AlertList, alerts_of
from app.ui.overview_graphs import figure, latency_lines, request_lines
from tests.conftest import CHAT_REPO
from tests.ui.conftest import App
from tests.ui.test_contrast import switch
from tests.ui.test_hub_fit import RTX_4090, _heartbeat, _node_joins
from tests.ui.test_nodes_page import app_http
from tests.ui.test_playground import ready_chat

GB = 10**9


def ask(gui: App, times: int, model: str = CHAT_REPO) -> None:
    """`times` chat completions through the balancer's /v1, as any client sends them."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}

    async def send() -> None:
        for _ in range(times):
            async with app_http(gui).post(
                gui.ctx.base_url + "/v1/chat/completions", json=body
            ) as r:
                assert r.status == 200, await r.text()

    gui.run(send())


def test_the_overview_shows_the_last_hour_and_draws_the_day_after_real_traffic(gui: App) -> None:
    ready_chat(gui)
    window = gui.desktop.window
    window.resize(QSize(1280, 1000))
    window.show_page("Overview")
    overview = window.overview
    ask(gui, 3)
    figures = overview.numbers
    gui.wait(lambda: figures["Requests, last hour"].text() == "3", timeout=30)
    assert figures["Nodes online"].text() == "1 / 1"
    assert figures["Models ready"].text() == "1"
    assert figures["Error rate, last hour"].text() == "0.0 %"
    assert figures["Median latency"].text().endswith(" ms")
    assert figures["Tokens/s now"].text() != "—"
    graphs = overview.graphs
    gui.wait(lambda: graphs["requests"].curves() > 0 and graphs["latency"].curves() > 0)
    assert graphs["speed"].curves() > 0
    # What a screen reader says for a graph: its name, and what it shows in words.
    requests = graphs["requests"]
    assert requests.plot.accessibleName() == "Requests a minute"
    assert "requests: now" in requests.text.text() and "peak 3" in requests.text.text()
    assert "errors: 0 throughout" in requests.text.text()
    assert requests.plot.accessibleDescription() == requests.text.text()
    assert "median: now" in graphs["latency"].text.text()
    assert not overview.alerts.shown and overview.alerts.none.isVisible()
    window.show()
    gui.screenshot(window, "overview-dashboard")
    switch(gui, "dark")
    try:
        gui.screenshot(window, "overview-dashboard-dark")
    finally:
        switch(gui, "light")


def test_the_overview_fetches_on_traffic_only_while_shown(gui: App) -> None:
    ready_chat(gui)
    window = gui.desktop.window
    window.show()
    window.show_page("Models")
    overview = window.overview

    def last_hour() -> int:
        return overview.hour["totals"]["requests"] if overview.hour else -1

    ask(gui, 1)
    window.show_page("Overview")  # what traffic came while hidden is fetched once shown
    gui.wait(lambda: last_hour() == 1, timeout=30)
    ask(gui, 2)  # a traffic event while shown redraws without any poll
    gui.wait(lambda: last_hour() == 3, timeout=30)


@pytest.mark.parametrize("gui", [False], indirect=True, ids=["nodes-registered-by-the-test"])
def test_an_offline_node_raises_an_alert_that_is_dismissed_until_it_happens_again(
    gui: App,
) -> None:
    gui.ctx.nodes.offline_after = 1.0  # as the node_offline_after setting does, but short
    window = gui.desktop.window
    window.show()
    window.show_page("Overview")
    alerts = window.overview.alerts
    token = gui.run(_node_joins(gui, "studio-pc", 9302))
    gui.run(_heartbeat(gui, token, [RTX_4090], 32 * GB))

    def offline_alert() -> Alert | None:
        return next((a for a in alerts.shown if a.key.startswith("offline:")), None)

    alert = gui.wait(offline_alert, timeout=15)  # no heartbeat for a second: offline
    assert alert.text.startswith("Node studio-pc is offline: no heartbeat since ")
    gui.screenshot(window, "overview-alert")
    dismiss = next(
        b for b in alerts.findChildren(type(window.overview.keys_button)) if b.isVisible()
    )
    assert dismiss.accessibleName() == f"Dismiss: {alert.text}"
    dismiss.click()
    gui.wait(lambda: offline_alert() is None and alerts.none.isVisible())
    gui.desktop.state.refresh()  # a refresh does not bring a dismissed alert back
    gui.settle(0.5)
    assert offline_alert() is None
    # It comes back online (the condition clears), then goes offline again: warned again.
    gui.run(_heartbeat(gui, token, [RTX_4090], 32 * GB))
    gui.wait(lambda: alerts.dismissed == set(), timeout=15)
    gui.wait(offline_alert, timeout=15)


@pytest.mark.parametrize("gui", [False], indirect=True, ids=["nodes-registered-by-the-test"])
def test_a_node_whose_disk_fills_up_is_named_in_an_alert(gui: App) -> None:
    window = gui.desktop.window
    window.show()
    window.show_page("Overview")
    token = gui.run(_node_joins(gui, "studio-pc", 9302))
    system = {"memory_total_bytes": 32 * GB, "memory_available_bytes": 16 * GB}
    body = {"models": [], "devices": [], "slots": 4}
    body["system"] = system | disk(2000 * GB, 150 * GB)  # 7.5 % free

    async def beat() -> None:
        async with app_http(gui).post(
            gui.ctx.base_url + "/v0/health", json=body, headers={"X-Node-Token": token}
        ) as r:
            assert r.status == 200

    gui.run(beat())
    alerts = window.overview.alerts
    gui.wait(
        lambda: (
            [a.text for a in alerts.shown]
            == ["Node studio-pc is nearly out of disk space: 150.0 GB free of 2.0 TB."]
        )
    )
    body["system"] = system | disk(2000 * GB, 900 * GB)  # files deleted: the alert clears
    gui.run(beat())
    gui.desktop.state.refresh()  # node figures have no event: the poll brings them
    gui.wait(lambda: not alerts.shown)


def node(name: str, **extra: Any) -> NodeJson:
    """A node entry as GET /v0/nodes gives it."""
    base: dict[str, Any] = {
        "id": f"id-{name}",
        "name": name,
        "url": "http://127.0.0.1:9",
        "kind": "remote",
        "status": NodeStatus.ONLINE,
        "created_at": 0.0,
        "last_seen": 1000.0,
        "registered_at": 0.0,
        "tags": [],
        "notes": "",
        "metrics": {},
        "metrics_stale": False,
        "ready_models": [0, 0],
        "models": [],
        "inflight": 0,
    }
    return base | extra  # type: ignore[return-value]


def metrics(**extra: Any) -> dict[str, Any]:
    return {
        "active_requests": 0,
        "loaded_models": [],
        "ready_models": [0, 0],
        "sync_state": None,
        "sync_progress": None,
        "system": {},
        "devices": [],
        "slots": 4,
        "free_slots": 4,
    } | extra


def disk(total: int, free: int) -> dict[str, int]:
    return {"disk_total_bytes": total, "disk_free_bytes": free}


def bucket(at: float, requests: int, errors: int = 0, p50: float | None = 10.0) -> StatsBucket:
    return {
        "at": at,
        "requests": requests,
        "errors": errors,
        "tokens_in": 0,
        "tokens_out": 0,
        "tokens_per_second": None,
        "ttft_ms": {"p50": p50, "p95": p50},
        "latency_ms": {"p50": p50, "p95": p50},
    }


def stats(buckets: list[StatsBucket], since: float = 0.0, until: float = 600.0) -> StatsJson:
    totals = bucket(since, sum(b["requests"] for b in buckets), sum(b["errors"] for b in buckets))
    return {
        "range": "1h",
        "step_seconds": 60,
        "since": since,
        "until": until,
        "model": None,
        "node": None,
        "buckets": buckets,
        "totals": totals,
        "by_model": [],
        "by_node": [],
        "nodes": [],
    }


def test_each_rule_warns_in_plain_words_and_only_past_its_threshold() -> None:
    gpu_full = {"name": "RTX 4090", "backend": "cuda", "total_bytes": 24 * GB}
    held = gpu_full | {"free_bytes": GB // 2, "utilization": 0.0}
    nodes = [
        node("down", status=NodeStatus.OFFLINE, last_seen=None),
        node("full-disk", metrics=metrics(system=disk(500 * GB, 4 * GB))),
        node("roomy", metrics=metrics(system=disk(500 * GB, 200 * GB))),
        node("held", metrics=metrics(devices=[held])),
        node("busy", metrics=metrics(loaded_models=["m"], devices=[held])),  # its own model
    ]
    broken: RegisteredModel = {
        "name": "m",
        "lifecycle_status": Lifecycle.ERROR,
        "error": "disk full",
    }  # type: ignore[typeddict-item]
    hour = stats([bucket(0, 19, 1), bucket(60, 1, 1)])  # 2 of 20 failed: 10 %
    found = {a.key: a.text for a in alerts_of(nodes, [broken], None, hour, now=2000.0)}
    assert found == {
        "offline:id-down": "Node down is offline: no heartbeat and was never heard from. "
        "Requests go to other nodes.",
        "disk:id-full-disk": "Node full-disk is nearly out of disk space: 4.0 GB free of 500.0 GB.",
        "gpu:id-held:0": "RTX 4090 on node held has only 500.0 MB free of 24.0 GB while the node "
        "runs nothing: another program may be holding its memory.",
        "errors": "10% of requests failed in the last hour (2 of 20).",
        "model:m": "Model m is in error: disk full",
    }
    few = stats([bucket(0, 10, 5)])  # half failed, but too few requests to mean much
    assert not [a for a in alerts_of([], [], None, few) if a.key == "errors"]


def test_gpu_memory_rising_for_an_hour_without_traffic_is_an_anomaly() -> None:
    now = 10_000.0
    day = stats([], since=0.0, until=now)
    rising = [
        {
            "at": now - 3600 + 60 * i,
            "cpu": 0.0,
            "memory_used_bytes": None,
            "memory_total_bytes": None,
            "gpu_utilization": 0.0,
            "gpu_memory_used_bytes": GB + i * 100 * 10**6,
            "gpu_memory_total_bytes": 24 * GB,
        }
        for i in range(30)
    ]
    day["nodes"] = [{"node_id": "id-box", "samples": rising}]  # type: ignore[typeddict-item]
    quiet = stats([], since=now - 3600, until=now)
    found = alerts_of([node("box")], [], day, quiet, now=now)
    assert [a.text for a in found] == [
        "GPU memory in use on node box rose all through the last hour with no requests: a "
        "program may be leaking it."
    ]
    busy = stats([bucket(now - 120, 4)], since=now - 3600, until=now)
    assert alerts_of([node("box")], [], day, busy, now=now) == []


def test_missing_minutes_are_zero_requests_but_no_latency() -> None:
    day = stats([bucket(60, 2), bucket(240, 1, p50=30.0)], since=0.0, until=300.0)
    requests = request_lines(day)[0]
    assert requests.xs == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    assert requests.ys == [0.0, 2.0, 0.0, 0.0, 1.0, 0.0]
    median = latency_lines(day)[0]
    assert (median.xs, median.ys) == ([60.0, 240.0], [10.0, 30.0])


def test_a_dismissed_alert_stays_dismissed_while_raised(qapp: Any) -> None:
    page = QWidget()
    shown = AlertList(after=QPushButton(page), parent=page)
    a, b = Alert("a", "A is wrong."), Alert("b", "B is wrong.")
    shown.set_alerts([a, b])
    shown.dismiss("a")
    assert shown.shown == [b]
    shown.set_alerts([b, a])  # still raised, in another order: still dismissed
    assert shown.shown == [b]
    shown.set_alerts([b])  # A cleared…
    shown.set_alerts([a, b])  # …and came back: shown again
    assert shown.shown == [a, b]


def test_figures_in_the_summaries_read_as_numbers() -> None:
    assert [figure(v) for v in (2921.4, 531.0, 11.74, 0.25)] == ["2921", "531", "11.7", "0.25"]
