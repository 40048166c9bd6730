"""The dashboard's graphs: /v0/stats buckets as time series, drawn with pyqtgraph in the
theme's colours, each with a sentence that says what it shows (a graph alone says nothing to
a screen reader)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.core.wire import StatsBucket, StatsJson
from app.ui import theme
from app.ui.i18n import tr
from app.ui.widgets import selectable_by_keyboard

HOUR = 3600.0
NAN = float("nan")


@dataclass
class Line:
    """One line of a graph: its name in the legend and its points (NaN: no measurement)."""

    name: str
    xs: list[float]
    ys: list[float]
    tone: str = "accent"  # a colour of app/ui/theme.py


def minutes(stats: StatsJson) -> list[float]:
    """Every bucket start of the range, oldest first (the store lists only busy ones)."""
    step = float(stats["step_seconds"] or 60)
    first = math.floor(stats["since"] / step) * step
    count = max(0, int((stats["until"] - first) // step) + 1)
    return [first + i * step for i in range(count)]


def filled(stats: StatsJson) -> tuple[list[float], list[StatsBucket | None]]:
    """The range's bucket starts with each one's bucket, None where nothing was recorded."""
    step = float(stats["step_seconds"] or 60)
    by_start = {math.floor(b["at"] / step) * step: b for b in stats["buckets"]}
    xs = minutes(stats)
    return xs, [by_start.get(x) for x in xs]


def request_lines(stats: StatsJson) -> list[Line]:
    """Requests and errors per bucket: a minute with no traffic is zero requests."""
    xs, buckets = filled(stats)
    return [
        Line(tr("requests"), xs, [float(b["requests"]) if b else 0.0 for b in buckets]),
        Line(tr("errors"), xs, [float(b["errors"]) if b else 0.0 for b in buckets], "error"),
    ]


def latency_lines(stats: StatsJson) -> list[Line]:
    """TTFT p50 and p95 where measured: a quiet minute has no latency (not a zero one)."""
    measured = [b for b in stats["buckets"] if b["ttft_ms"]["p50"] is not None]
    xs = [b["at"] for b in measured]
    return [
        Line(tr("median"), xs, [_num(b["ttft_ms"]["p50"]) for b in measured]),
        Line(tr("95th percentile"), xs, [_num(b["ttft_ms"]["p95"]) for b in measured], "warning"),
    ]


def error_rate_line(stats: StatsJson) -> list[Line]:
    """The share of requests that failed, in percent, in the buckets that had requests."""
    busy = [b for b in stats["buckets"] if b["requests"]]
    return [
        Line(
            tr("error rate"),
            [b["at"] for b in busy],
            [100.0 * b["errors"] / b["requests"] for b in busy],
            "error",
        )
    ]


def speed_line(stats: StatsJson) -> list[Line]:
    """Tokens generated per second: zero in a minute that generated nothing."""
    xs, buckets = filled(stats)
    return [Line(tr("tokens/s"), xs, [_num(b["tokens_per_second"]) if b else 0.0 for b in buckets])]


def gpu_line(stats: StatsJson) -> list[Line]:
    """GPU use in percent, the mean over the nodes that reported one at each time."""
    step = float(stats["step_seconds"] or 60)
    sums: dict[float, list[float]] = {}
    for series in stats["nodes"]:
        for s in series["samples"]:
            if s["gpu_utilization"] is not None:
                sums.setdefault(math.floor(s["at"] / step) * step, []).append(s["gpu_utilization"])
    xs = sorted(sums)
    return [Line(tr("GPU use"), xs, [100.0 * sum(sums[x]) / len(sums[x]) for x in xs])]


def _num(value: float | None) -> float:
    return NAN if value is None else float(value)


def clock(at: float) -> str:
    """A time of day as the graphs' axis writes it."""
    return time.strftime("%H:%M", time.localtime(at))


def figure(value: float) -> str:
    """A measured value as people read it: three digits, whole numbers from 100 up
    (2921, not 2.92e+03)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def summary(title: str, lines: Sequence[Line], unit: str) -> str:
    """The graph in one sentence: each line's latest value and its peak, with when."""
    parts = []
    for line in lines:
        points = [(x, y) for x, y in zip(line.xs, line.ys, strict=True) if not math.isnan(y)]
        if not points:
            parts.append(tr("{line}: none recorded").format(line=line.name))
            continue
        if not any(y for _x, y in points):
            parts.append(tr("{line}: {zero} throughout").format(line=line.name, zero=f"0{unit}"))
            continue
        peak_x, peak = max(points, key=lambda p: p[1])
        parts.append(
            tr("{line}: now {now}, peak {peak} at {when}").format(
                line=line.name,
                now=figure(points[-1][1]) + unit,
                peak=figure(peak) + unit,
                when=clock(peak_x),
            )
        )
    # The joins are words too: a Japanese sentence ends in 。 and lists with 、.
    return tr("{graph} — {parts}.").format(graph=title, parts=tr("; ").join(parts))


def numeric_dates() -> Any:
    """A time axis that writes dates in digits: pyqtgraph's day ticks name the weekday and its
    month ticks the month in English ("Mon 30", "Nov"), whatever the UI's language."""
    axis = pg.DateAxisItem(orientation="bottom")
    for level in axis.zoomLevels.values():
        for spec in level.tickSpecs:
            spec.format = {"%a %d": "%m/%d", "%b": "%Y/%m"}.get(spec.format, spec.format)
    return axis


class Graph(QWidget):
    """A titled time graph over the last day with its summary in words below it."""

    def __init__(
        self, title: str, unit: str = "", height: int = 170, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.title, self.unit = title, unit
        self.lines: list[Line] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel(title)
        self.caption.setObjectName("who")  # bold, as other headings in a card
        self.plot = pg.PlotWidget(axisItems={"bottom": numeric_dates()})
        self.plot.setAccessibleName(title)
        # A picture, not a control: the summary below is the keyboard's (and a screen
        # reader's) way to what it shows; panning and its menu would only lose the view.
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setFixedHeight(height)
        self.plot.getPlotItem().getViewBox().setDefaultPadding(0.02)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setProperty("tone", "muted")
        selectable_by_keyboard(self.text)
        self.text.setAccessibleName(tr("{graph}, in words").format(graph=title))
        layout.addWidget(self.caption)
        layout.addWidget(self.plot)
        layout.addWidget(self.text)
        self.set_lines([])

    def set_lines(self, lines: list[Line], since: float | None = None) -> None:
        """Draw these lines (over `since` … now when given) and say what they show."""
        self.lines = lines
        self.since = since
        self._draw()
        if lines:
            said = summary(self.title, lines, self.unit)
        else:
            said = tr("{graph}: no data yet.").format(graph=self.title)
        self.text.setText(said)
        self.plot.setAccessibleDescription(self.text.text())

    def curves(self) -> int:
        """How many points the graph draws (what a test checks it drew something)."""
        return sum(
            sum(1 for y in item.getData()[1] if not math.isnan(y))
            for item in self.plot.getPlotItem().listDataItems()
            if item.getData()[1] is not None
        )

    def _draw(self) -> None:
        c = theme.colors()
        plot = self.plot.getPlotItem()
        plot.clear()
        self.plot.setBackground(c["base"])
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(c["edge"]))
            axis.setTextPen(pg.mkPen(c["muted"]))
        if plot.legend is None and len(self.lines) > 1:
            plot.addLegend(offset=(8, 4), labelTextColor=c["text"])
        if plot.legend is not None:
            plot.legend.setLabelTextColor(c["text"])
        for line in self.lines:
            # Lines join measured points only: a gap in latency is no latency, not zero.
            plot.plot(
                line.xs,
                line.ys,
                name=line.name,
                pen=pg.mkPen(c[line.tone], width=2),
                connect="finite",
                symbol="o" if len(line.xs) < 3 else None,  # a lone point still shows
                symbolSize=5,
                symbolBrush=c[line.tone],
                symbolPen=None,
            )
        now = time.time()  # the last day, also while there is nothing to draw yet
        since = self.since if self.since is not None else now - 24 * HOUR
        # A little room on the right: the current minute's point sits at the very edge.
        plot.setXRange(since, now + 0.02 * (now - since), padding=0)
        # Every figure here is zero or more: the axis starts at zero (autorange would centre a
        # flat zero line between -0.5 and 0.5).
        top = max((y for line in self.lines for y in line.ys if not math.isnan(y)), default=0.0)
        plot.setYRange(0, top * 1.1 if top > 0 else 1.1, padding=0)

    def changeEvent(self, event: QEvent) -> None:
        """Redraw in the new colours when the scheme switches (the palette changes)."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._draw()
