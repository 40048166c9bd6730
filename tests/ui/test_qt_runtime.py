"""The Qt binding must not leak references to None/True/False: PySide6 6.12.0 on Python 3.11
did, and the app aborted ("none_dealloc") after minutes of idling."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

TICKS = 4000


class _Emitter(QObject):
    fired = Signal(bool)


def test_slots_timers_and_signals_keep_their_references(qapp: QApplication) -> None:
    emitter = _Emitter()
    emitter.fired.connect(lambda _flag: None)
    count = {"n": 0}

    def tick() -> None:
        count["n"] += 1
        emitter.fired.emit(True)
        if count["n"] >= TICKS:
            timer.stop()

    timer = QTimer()
    timer.timeout.connect(tick)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    timer.start(0)
    while timer.isActive():
        qapp.processEvents()
    assert count["n"] == TICKS
    # The leak was one reference (or more) per call: TICKS of them. Other threads still running
    # from earlier tests (a node's download pool, a database thread) move None's count by a few
    # hundred at most, so the bound sits between the two.
    assert abs(sys.getrefcount(True) - true_before) < TICKS // 4
    assert abs(sys.getrefcount(None) - none_before) < TICKS // 4
