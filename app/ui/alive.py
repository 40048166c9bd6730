"""Callbacks that reach a widget only while it exists: an answer that lands after its page was
deleted (a language switch builds the window again) is dropped, not a call into a dead object."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec

import shiboken6
from PySide6.QtCore import QObject

P = ParamSpec("P")


def while_alive(owner: QObject, callback: Callable[P, object]) -> Callable[P, None]:
    """`callback`, called only while `owner`'s C++ object is still there."""

    def call(*args: P.args, **kwargs: P.kwargs) -> None:
        if shiboken6.isValid(owner):
            callback(*args, **kwargs)

    return call
