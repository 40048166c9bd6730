"""The Logs page: the balancer's log and each node's (fetched through the balancer), filtered by
level, time and keyword, tailed live, and downloaded as text or JSON lines."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabBar,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.wire import LogsJson
from app.ui.alive import while_alive
from app.ui.asyncs import spawn
from app.ui.i18n import QT_TR_NOOP, tr
from app.ui.logs_model import LogsModel
from app.ui.state import UiState
from app.ui.theme import set_property

BALANCER = "balancer"
LIMIT = 1000  # entries a fetch asks for (the newest of them when more match)
DOWNLOAD_LIMIT = 5000  # the most the API answers: a download holds all it can
TAIL_MS = 2000
KEYWORD_PAUSE_MS = 500  # typing stops this long: the keyword applies
LEVELS = [
    (None, QT_TR_NOOP("All levels")),
    ("INFO", QT_TR_NOOP("Info and above")),
    ("WARNING", QT_TR_NOOP("Warnings and errors")),
    ("ERROR", QT_TR_NOOP("Errors only")),
]
RANGES = [
    (15 * 60, QT_TR_NOOP("Last 15 minutes")),
    (3600, QT_TR_NOOP("Last hour")),
    (86400, QT_TR_NOOP("Last 24 hours")),
    (7 * 86400, QT_TR_NOOP("Last 7 days")),
    (None, QT_TR_NOOP("All")),
]
FORMATS = {"text": ("log", QT_TR_NOOP("Text files")), "jsonl": ("jsonl", QT_TR_NOOP("JSON lines"))}


class LogsPage(QWidget):
    """One tab per log (the balancer's, then each node's) over filters and the entries."""

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.client = state.client
        layout = QVBoxLayout(self)
        self.sources = QTabBar()
        self.sources.setAccessibleName(tr("whose log"))
        self.sources.setExpanding(False)
        self.sources.addTab(tr("Balancer"))
        self.sources.setTabData(0, BALANCER)
        self.sources.currentChanged.connect(lambda _i: self.reload())
        layout.addWidget(self.sources)
        filters = QHBoxLayout()
        self.level = QComboBox()
        self.level.setAccessibleName(tr("lowest level shown"))
        for value, text in LEVELS:
            self.level.addItem(tr(text), value)
        self.range = QComboBox()
        self.range.setAccessibleName(tr("time range"))
        for seconds, text in RANGES:
            self.range.addItem(tr(text), seconds)
        self.range.setCurrentIndex(2)
        self.keyword = QLineEdit()
        self.keyword.setAccessibleName(tr("keyword"))
        self.keyword.setPlaceholderText(tr("Keyword"))
        self.keyword.setClearButtonEnabled(True)
        filters.addWidget(self.level)
        filters.addWidget(self.range)
        filters.addWidget(self.keyword, 1)
        layout.addLayout(filters)
        actions = QHBoxLayout()
        self.live = QCheckBox(tr("Live tail"))
        self.live.setAccessibleName(tr("Live tail: show new entries as they are written"))
        self.download_text = QPushButton(tr("Download as text…"))
        self.download_jsonl = QPushButton(tr("Download as JSON lines…"))
        actions.addWidget(self.live)
        actions.addStretch(1)
        actions.addWidget(self.download_text)
        actions.addWidget(self.download_jsonl)
        layout.addLayout(actions)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.hide()
        layout.addWidget(self.note)
        self.model = LogsModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName(tr("log entries"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.tail_timer = QTimer(self)  # public: tests see whether it runs
        self.tail_timer.setInterval(TAIL_MS)
        self.tail_timer.timeout.connect(self.tail)
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(KEYWORD_PAUSE_MS)
        self._pause.timeout.connect(self.reload)
        self.level.currentIndexChanged.connect(lambda _i: self.reload())
        self.range.currentIndexChanged.connect(lambda _i: self.reload())
        self.keyword.returnPressed.connect(self.reload)
        self.keyword.textChanged.connect(lambda _t: self._pause.start())
        self.live.toggled.connect(self._live)
        self.download_text.clicked.connect(lambda: self.download("text"))
        self.download_jsonl.clicked.connect(lambda: self.download("jsonl"))
        self.loaded = False
        self._asked = 0  # each fetch's number: an answer to an older question is dropped
        self._tailing = False
        self.last: LogsJson | None = None
        state.nodesChanged.connect(self._node_tabs)
        self._node_tabs()

    # -- what is asked ------------------------------------------------------------------
    def source(self) -> str:
        """The log shown: "balancer" or a node's id."""
        return str(self.sources.tabData(self.sources.currentIndex()) or BALANCER)

    def filters(self) -> dict[str, str | float | None]:
        """The level, start time and keyword in force, as the API takes them."""
        seconds = self.range.currentData()
        return {
            "level": self.level.currentData(),
            "since": None if seconds is None else time.time() - float(seconds),
            "q": self.keyword.text().strip() or None,
        }

    def _node_tabs(self) -> None:
        """One tab per known node, after the balancer's; the log shown stays shown."""
        nodes = [(n["id"], n["name"] or n["id"]) for n in self.state.nodes]
        shown = [
            (str(self.sources.tabData(i)), self.sources.tabText(i))
            for i in range(1, self.sources.count())
        ]
        if nodes == shown:
            return
        current = self.source()
        self.sources.blockSignals(True)  # rebuilt in place: not a switch of log
        while self.sources.count() > 1:
            self.sources.removeTab(1)
        for node_id, name in nodes:
            i = self.sources.addTab(name)
            self.sources.setTabData(i, node_id)
            self.sources.setTabToolTip(i, tr("The log of the node {name}").format(name=name))
        index = next((i for i, (nid, _n) in enumerate(nodes, 1) if nid == current), 0)
        self.sources.setCurrentIndex(index)
        self.sources.blockSignals(False)
        if current != self.source():
            self.reload()  # its node went away: the balancer's log instead

    # -- fetching -----------------------------------------------------------------------
    def reload(self) -> None:
        """Fetch the entries for the log and filters in force (only while shown)."""
        self._pause.stop()
        if not self.isVisible():
            self.loaded = False  # fetched when shown
            return
        self._asked += 1
        asked, f = self._asked, self.filters()
        fetch = self.client.logs(
            self.source(), level=_text(f["level"]), since=_number(f["since"]),
            q=_text(f["q"]), limit=LIMIT,
        )  # fmt: skip
        spawn(
            fetch,
            on_error=while_alive(self, lambda reason: self._failed(asked, reason)),
            on_done=while_alive(self, lambda logs: self._got(asked, logs, replace=True)),
        )

    def tail(self) -> None:
        """Fetch what was written since the last entry shown."""
        if self._tailing or not self.isVisible():
            return
        f = self.filters()
        last = self.model.entries[-1]["at"] if self.model.entries else None
        since = _number(f["since"])
        if last is not None:
            since = max(since or 0.0, last)
        asked = self._asked
        self._tailing = True
        fetch = self.client.logs(
            self.source(), level=_text(f["level"]), since=since, q=_text(f["q"]), limit=LIMIT
        )
        spawn(
            fetch,
            on_error=while_alive(self, lambda reason: self._failed(asked, reason, replace=False)),
            on_done=while_alive(self, lambda logs: self._got(asked, logs, replace=False)),
        )

    def _got(self, asked: int, logs: LogsJson, replace: bool) -> None:
        if not replace:
            self._tailing = False
        if asked != self._asked:
            return
        self.loaded, self.last = True, logs
        bar = self.table.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        if replace:
            self.model.replace(logs["entries"])
        else:
            self.model.extend(logs["entries"])
        if replace or at_end:
            self.table.scrollToBottom()  # newest last: a reader follows the end
        if not self.model.entries:
            self._say(tr("Nothing matches these filters."), None)
        elif logs["truncated"] and replace:
            self._say(tr("The newest {n} entries; narrow the filters for older ones.").format(
                n=len(logs["entries"])), None)  # fmt: skip
        else:
            self._say("", None)

    def _failed(self, asked: int, reason: str, replace: bool = True) -> None:
        if not replace:
            self._tailing = False
        if asked != self._asked:
            return
        self.loaded = True
        if not replace and self.model.entries:
            # A node that died while its log was tailed: what was read stays for the reader
            # (it may say why), and the tail keeps asking until the node answers again.
            self._say(
                tr(
                    "The log stopped updating: {reason}. The entries shown were read before; "
                    "the live tail keeps trying."
                ).format(reason=reason),
                "error",
            )
            return
        self.model.replace([])
        self._say(tr("This log cannot be shown: {reason}").format(reason=reason), "error")

    def _say(self, text: str, tone: str | None) -> None:
        self.note.setText(text)
        set_property(self.note, "tone", tone)
        self.note.setVisible(bool(text))

    # -- live tail ------------------------------------------------------------------------
    def _live(self, on: bool) -> None:
        if on and self.isVisible():
            self.tail_timer.start()
            self.tail()
        else:
            self.tail_timer.stop()

    def showEvent(self, event: QShowEvent) -> None:
        """Shown: fetch what the filters ask for; tail again when it is on."""
        super().showEvent(event)
        if not self.loaded:
            self.reload()
        self._live(self.live.isChecked())

    def hideEvent(self, event: QHideEvent) -> None:
        """Hidden: the tail stops until shown again."""
        super().hideEvent(event)
        self.tail_timer.stop()

    # -- download -------------------------------------------------------------------------
    def download(self, fmt: str) -> None:
        """Save the entries the filters select as text or JSON lines, where the user says."""
        suffix, kind = FORMATS[fmt]
        name = f"llmlb-{self.source()}.{suffix}"
        path, _filter = QFileDialog.getSaveFileName(
            self, tr("Save the log"), str(Path.home() / name), f"{tr(kind)} (*.{suffix})"
        )
        if not path:
            return
        f = self.filters()
        note = while_alive(self, self._say)  # the file is written even when the page is gone

        def save(text: str) -> None:
            try:
                Path(path).write_text(text, encoding="utf-8")
            except OSError as exc:
                fail(str(exc))
                return
            note(tr("Saved to {path}").format(path=path), None)

        def fail(reason: str) -> None:
            note(tr("The log could not be saved: {reason}").format(reason=reason), "error")

        spawn(
            self.client.logs_download(self.source(), fmt, limit=DOWNLOAD_LIMIT, **f),
            on_error=fail,
            on_done=save,
        )


def _text(value: str | float | None) -> str | None:
    return None if value is None else str(value)


def _number(value: str | float | None) -> float | None:
    return None if value is None else float(value)
