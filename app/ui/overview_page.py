"""The Overview, the default page: the URL to paste into your tools, the cluster in figures,
alerts, and the last day's traffic in graphs (redrawn from pushed events, never polled)."""

from __future__ import annotations

import asyncio
import time

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.types import Lifecycle
from app.core.wire import StatsJson
from app.ui.alerts import AlertList, alerts_of
from app.ui.asyncs import spawn
from app.ui.endpoint import client_snippet, keys_required, public_url
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.overview_graphs import (
    Graph,
    error_rate_line,
    gpu_line,
    latency_lines,
    request_lines,
    speed_line,
)
from app.ui.state import LIVE, UiState
from app.ui.widgets import selectable_by_keyboard

# At most one /v0/stats fetch this often, however fast traffic events come (they come at most
# once a second while requests finish); a page not shown fetches nothing until it is shown.
MIN_GAP_MS = 3000
FIGURES = (
    QT_TR_NOOP("Nodes online"),
    QT_TR_NOOP("Models ready"),
    QT_TR_NOOP("Requests, last hour"),
    QT_TR_NOOP("Error rate, last hour"),
    QT_TR_NOOP("Median latency"),  # time to the first token, last hour
    QT_TR_NOOP("Tokens/s now"),
)


class OverviewPage(QWidget):
    """Counts, the endpoint, how to call it, and a way to a first model."""

    wantsHub = Signal()  # "Get a model": the window shows the Model Hub
    wantsKeys = Signal()  # "API keys…": the window shows Settings' API keys

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.day: StatsJson | None = None
        self.hour: StatsJson | None = None
        self._stale = True  # traffic changed since the last fetch
        self._fetching = False
        self._gap = QTimer(self)
        self._gap.setSingleShot(True)
        self._gap.setInterval(MIN_GAP_MS)
        self._gap.timeout.connect(self._gap_over)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # Its controls take focus; the scroll area itself would be an invisible tab stop.
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        layout = QVBoxLayout(body)
        endpoint = QHBoxLayout()
        self.url = QLabel(self.endpoint_url())
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url.setAccessibleName(tr("OpenAI endpoint URL"))
        font = QFont(self.url.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.url.setFont(font)
        copy = QPushButton(tr("Copy"))
        copy.setAccessibleName(tr("Copy endpoint URL"))
        copy.clicked.connect(self.copy_url)
        endpoint.addWidget(QLabel(tr("Endpoint") + ":"))
        endpoint.addWidget(self.url, 1)
        endpoint.addWidget(copy)
        layout.addLayout(endpoint)
        layout.addWidget(self._first_model())
        layout.addLayout(self._figures())
        self.trouble = QLabel()  # why the traffic figures are missing, when they are
        self.trouble.setWordWrap(True)
        self.trouble.setProperty("tone", "error")
        self.trouble.hide()
        layout.addWidget(self.trouble)
        self.alerts = AlertList(after=self.get_model)
        layout.addWidget(self.alerts)
        layout.addLayout(self._graphs())
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        selectable_by_keyboard(self.hint)  # the example is copied from the keyboard too
        self.hint.setAccessibleName(tr("how to call the endpoint"))
        layout.addWidget(self.hint)
        self.keys_button = QPushButton(tr("API keys…"))
        self.keys_button.clicked.connect(self.wantsKeys.emit)
        layout.addWidget(self.keys_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        state.hubChanged.connect(self.refresh)
        state.nodesChanged.connect(self.refresh)
        state.nodesChanged.connect(self.want_stats)
        # A method, not a lambda: Qt drops it with this widget (a language switch rebuilds it).
        state.trafficRecorded.connect(self._traffic)
        self.refresh()

    def _figures(self) -> QGridLayout:
        """The cluster in six figures, three a row (a caption under each)."""
        grid = QGridLayout()
        self.numbers: dict[str, QLabel] = {}
        for i, key in enumerate(FIGURES):
            value = QLabel("—")
            big = QFont(value.font())
            big.setPointSizeF(big.pointSizeF() * 2.2)
            big.setBold(True)
            value.setFont(big)
            value.setAccessibleName(tr(key))
            caption = QLabel(tr(key))
            caption.setWordWrap(True)  # three captions side by side at 800 px, in any language
            row, column = divmod(i, 3)
            grid.addWidget(value, 2 * row, column)
            grid.addWidget(caption, 2 * row + 1, column)
            self.numbers[key] = value
        return grid

    def _graphs(self) -> QGridLayout:
        """The last day's graphs, two a row."""
        grid = QGridLayout()
        self.graphs = {
            "requests": Graph(tr("Requests a minute")),
            "latency": Graph(tr("Time to first token (ms)"), " ms"),
            "errors": Graph(tr("Error rate (%)"), " %"),
            "speed": Graph(tr("Tokens per second")),
            "gpu": Graph(tr("GPU use, mean over nodes (%)"), " %"),
        }
        for i, graph in enumerate(self.graphs.values()):
            grid.addWidget(graph, i // 2, i % 2, Qt.AlignmentFlag.AlignTop)
        return grid

    def _first_model(self) -> QFrame:
        """Shown while no model is registered: the way to a first one."""
        self.empty = QFrame()
        self.empty.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self.empty)
        text = QLabel(
            tr("No model yet. Pick one in the Model Hub: it downloads and is ready to use here.")
        )
        text.setWordWrap(True)
        self.get_model = QPushButton(tr("Get a model…"))
        self.get_model.clicked.connect(self.wantsHub.emit)
        row.addWidget(text, 1)
        row.addWidget(self.get_model)
        self.empty.hide()
        return self.empty

    def endpoint_url(self) -> str:
        """The /v1 URL to paste into tools (the LAN address while serving the LAN)."""
        return public_url(self.state) + "/v1"

    def refresh(self) -> None:
        """Recount, re-raise the alerts, and say how to call the endpoint under the current key
        policy."""
        models, nodes = self.state.models, self.state.nodes
        live = sum(1 for n in nodes if n["status"] in LIVE)
        self.numbers["Nodes online"].setText(f"{live} / {len(nodes)}")
        self.numbers["Models ready"].setText(
            str(sum(1 for m in models if m.get("lifecycle_status") == Lifecycle.READY))
        )
        # Only once the hub has loaded: "no model" before the first answer would flash.
        self.empty.setVisible(bool(self.state.hub) and not models)
        self.url.setText(self.endpoint_url())
        self.hint.setText(client_snippet(self.state))
        self.keys_button.setVisible(keys_required(self.state))
        self.alerts.set_alerts(alerts_of(nodes, models, self.day, self.hour))

    # -- traffic ------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        """Shown: fetch what changed while hidden."""
        super().showEvent(event)
        self.want_stats()

    def _traffic(self, _event: object) -> None:
        self.want_stats()

    def want_stats(self) -> None:
        """Traffic or nodes changed: refetch the stats now, or once the gap since the last
        fetch is over; while hidden, once shown."""
        self._stale = True
        if self.isVisible() and not self._fetching and not self._gap.isActive():
            self._stale = False
            self._fetching = True
            self._gap.start()
            spawn(self._fetch_stats(), on_error=self._stats_failed)

    def _gap_over(self) -> None:
        if self._stale:
            self.want_stats()

    async def _fetch_stats(self) -> None:
        try:
            day, hour = await asyncio.gather(
                self.state.client.stats("24h"), self.state.client.stats("1h")
            )
        finally:
            if shiboken6.isValid(self):
                self._fetching = False
        if shiboken6.isValid(self):  # a language switch may have rebuilt the page meanwhile
            self.show_stats(day, hour)
            if self._stale and not self._gap.isActive():
                self.want_stats()  # traffic came while this fetch took longer than the gap

    def _stats_failed(self, reason: str) -> None:
        if not shiboken6.isValid(self):
            return
        self.trouble.setText(tr("Traffic figures are unavailable: {reason}").format(reason=reason))
        self.trouble.show()

    def show_stats(self, day: StatsJson, hour: StatsJson) -> None:
        """Draw the last day and write the last hour's figures."""
        self.day, self.hour = day, hour
        self.trouble.hide()
        totals = hour["totals"]
        requests = totals["requests"]
        self.numbers["Requests, last hour"].setText(str(requests))
        self.numbers["Error rate, last hour"].setText(
            f"{100 * totals['errors'] / requests:.1f} %" if requests else "—"
        )
        p50 = totals["ttft_ms"]["p50"]
        self.numbers["Median latency"].setText("—" if p50 is None else f"{p50:.0f} ms")
        self.numbers["Tokens/s now"].setText(tokens_now(hour))
        since = day["since"]
        self.graphs["requests"].set_lines(request_lines(day), since)
        self.graphs["latency"].set_lines(latency_lines(day), since)
        self.graphs["errors"].set_lines(error_rate_line(day), since)
        self.graphs["speed"].set_lines(speed_line(day), since)
        self.graphs["gpu"].set_lines(gpu_line(day), since)
        self.alerts.set_alerts(alerts_of(self.state.nodes, self.state.models, day, hour))

    def copy_url(self) -> None:
        """Put the endpoint on the clipboard."""
        QGuiApplication.clipboard().setText(self.endpoint_url())


def tokens_now(hour: StatsJson, now: float | None = None) -> str:
    """Tokens per second in the last minute: the newest bucket, when it is that recent."""
    now = time.time() if now is None else now
    step = hour["step_seconds"] or 60
    recent = [b for b in hour["buckets"] if b["at"] + step >= now - step]
    speed = recent[-1]["tokens_per_second"] if recent else None
    return "—" if speed is None else f"{speed:.0f}"
