"""The Overview's alerts: what in the cluster needs a look, in plain words, as a list the user
dismisses. They only warn: nothing here acts on a node or a model."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.types import Lifecycle, NodeStatus
from app.core.wire import NodeJson, NodeSample, RegisteredModel, StatsJson
from app.ui.fit import metrics_of
from app.ui.i18n import tr
from app.ui.widgets import human_bytes

ERROR_RATE = 0.05  # over the last hour…
ERROR_RATE_MIN_REQUESTS = 20  # …counted only with enough requests to mean something
DISK_FREE_SHARE = 0.10  # a node's disk is nearly full under 10 % free…
DISK_FREE_BYTES = 5 * 10**9  # …or under 5 GB, whichever comes first
GPU_FREE_SHARE = 0.05  # a device this full while its node runs nothing: someone else holds it
GPU_CREEP_SAMPLES = 10  # minutes of samples over the last hour, at least, to call a trend
GPU_CREEP_SHARE = 0.05  # how much of the device the rise must take


@dataclass(frozen=True)
class Alert:
    """One warning: `key` names the condition (a dismissal lasts while the key is raised)."""

    key: str
    text: str


def node_alerts(node: NodeJson, now: float) -> list[Alert]:
    """A node's own warnings: offline, disk nearly full, a device's memory held by others."""
    name = node["name"] or node["id"]
    found: list[Alert] = []
    if node["status"] == NodeStatus.OFFLINE:
        seen = node["last_seen"]
        since = (
            tr("since {time}").format(time=time.strftime("%H:%M", time.localtime(seen)))
            if seen
            else tr("and was never heard from")
        )
        found.append(
            Alert(
                f"offline:{node['id']}",
                tr(
                    "Node {name} is offline: no heartbeat {since}. Requests go to other nodes."
                ).format(name=name, since=since),
            )
        )
        return found  # its last figures are old news
    metrics = metrics_of(node)
    if metrics is None:
        return found
    system = metrics.get("system") or {}
    total, free = system.get("disk_total_bytes"), system.get("disk_free_bytes")
    if total and free is not None:
        if free < DISK_FREE_SHARE * total or free < DISK_FREE_BYTES:
            found.append(
                Alert(
                    f"disk:{node['id']}",
                    tr("Node {name} is nearly out of disk space: {free} free of {total}.").format(
                        name=name,
                        free=human_bytes(free) if free else "0 B",
                        total=human_bytes(total),
                    ),
                )
            )
    # A device almost full while the node has no model loaded and nothing running: that memory
    # is not ours (another program, or a leak), and the next model load will fail on it.
    idle = not metrics.get("loaded_models") and not metrics.get("active_requests")
    for i, device in enumerate(metrics.get("devices") or []):
        total_d = device["total_bytes"]
        if idle and total_d and device["free_bytes"] < GPU_FREE_SHARE * total_d:
            found.append(
                Alert(
                    f"gpu:{node['id']}:{i}",
                    tr(
                        "{device} on node {name} has only {free} free of {total} while the node "
                        "runs nothing: another program may be holding its memory."
                    ).format(
                        device=device["name"],
                        name=name,
                        free=human_bytes(device["free_bytes"]) or "0 B",
                        total=human_bytes(total_d),
                    ),
                )
            )
    return found


def memory_creeps(samples: Sequence[NodeSample], since: float) -> bool:
    """Whether a node's GPU memory in use rose the whole time since `since`: never down from
    one sample to the next, over enough samples, by a real share of the device. With no
    traffic (the caller checks) nothing of ours should grow: a leak, or another program."""
    used = [
        (s["gpu_memory_used_bytes"], s["gpu_memory_total_bytes"])
        for s in samples
        if s["at"] >= since and s["gpu_memory_used_bytes"] is not None
    ]
    if len(used) < GPU_CREEP_SAMPLES:
        return False
    values = [u for u, _t in used if u is not None]
    total = used[-1][1] or 0
    steady = all(b >= a for a, b in itertools.pairwise(values))
    return steady and total > 0 and values[-1] - values[0] >= GPU_CREEP_SHARE * total


def alerts_of(
    nodes: Sequence[NodeJson],
    models: Sequence[RegisteredModel],
    day: StatsJson | None,
    hour: StatsJson | None,
    now: float | None = None,
) -> list[Alert]:
    """Every warning the cluster raises now (`day`/`hour`: /v0/stats over 24 h and 1 h)."""
    now = time.time() if now is None else now
    found = [a for n in nodes for a in node_alerts(n, now)]
    if hour is not None:
        t = hour["totals"]
        if t["requests"] >= ERROR_RATE_MIN_REQUESTS and t["errors"] > ERROR_RATE * t["requests"]:
            found.append(
                Alert(
                    "errors",
                    tr(
                        "{rate}% of requests failed in the last hour ({errors} of {requests})."
                    ).format(
                        rate=f"{100 * t['errors'] / t['requests']:.0f}",
                        errors=t["errors"],
                        requests=t["requests"],
                    ),
                )
            )
    for m in models:
        if m.get("lifecycle_status") == Lifecycle.ERROR:
            reason = m.get("error") or tr("no reason given")
            found.append(
                Alert(
                    f"model:{m['name']}",
                    tr("Model {name} is in error: {reason}").format(name=m["name"], reason=reason),
                )
            )
    quiet = hour is not None and hour["totals"]["requests"] == 0
    if day is not None and quiet:
        names = {n["id"]: n["name"] or n["id"] for n in nodes}
        for series in day["nodes"]:
            if memory_creeps(series["samples"], now - 3600):
                found.append(
                    Alert(
                        f"creep:{series['node_id']}",
                        tr(
                            "GPU memory in use on node {name} rose all through the last hour "
                            "with no requests: a program may be leaking it."
                        ).format(name=names.get(series["node_id"], series["node_id"])),
                    )
                )
    return found


class AlertList(QWidget):
    """The alerts raised now, each with a Dismiss button; a dismissed alert stays hidden until
    its condition clears, and shows again when it comes back."""

    def __init__(self, after: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.after = after  # the control before the list in Tab's order
        self.dismissed: set[str] = set()
        self.shown: list[Alert] = []
        self._raised: list[Alert] = []
        self.setAccessibleName(tr("alerts"))
        self.rows = QVBoxLayout(self)
        self.rows.setContentsMargins(0, 0, 0, 0)
        self.heading = QLabel(tr("Alerts"))
        self.heading.setObjectName("who")
        self.rows.addWidget(self.heading)
        self.none = QLabel(tr("No alerts: every node and model is fine."))
        self.none.setProperty("tone", "muted")
        self.rows.addWidget(self.none)
        self._widgets: list[QWidget] = []

    def set_alerts(self, alerts: list[Alert]) -> None:
        """Show what is raised now, less what the user dismissed while it lasts."""
        if alerts == self._raised:
            return  # the same list: keep the widgets (and the keyboard focus on them)
        self._raised = alerts
        keys = {a.key for a in alerts}
        self.dismissed &= keys  # a cleared condition is forgotten: it warns again next time
        self._show()

    def dismiss(self, key: str) -> None:
        """Hide this alert until its condition clears."""
        self.dismissed.add(key)
        self._show()

    def _show(self) -> None:
        for w in self._widgets:
            w.hide()
            w.deleteLater()
        self._widgets = []
        self.shown = [a for a in self._raised if a.key not in self.dismissed]
        before = self.after
        for alert in self.shown:
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            text = QLabel(alert.text)
            text.setWordWrap(True)
            text.setProperty("tone", "warning")
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            button = QPushButton(tr("Dismiss"))
            button.setAccessibleName(tr("Dismiss: {alert}").format(alert=alert.text))
            button.clicked.connect(lambda _=False, key=alert.key: self.dismiss(key))
            line.addWidget(text, 1)
            line.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
            self.rows.addWidget(row)
            self._widgets.append(row)
            # Made later than the page, the button would come last in Tab's order: put it
            # where it reads, after what came before it.
            QWidget.setTabOrder(before, button)
            before = button
        self.none.setVisible(not self.shown)
