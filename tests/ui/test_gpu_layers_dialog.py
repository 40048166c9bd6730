"""Setting a model's GPU layers from the Local page: right-click, choose, Save."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QMenu

from app.ui.gpu_layers_dialog import ALL, CPU, LAYERS, GpuLayersDialog, describe
from app.ui.local_page import LocalPage
from tests.conftest import CHAT_REPO
from tests.ui.conftest import App

# A popup menu asks for the keyboard grab, which the offscreen platform cannot give.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support grabbing the keyboard")


def api_value(gui: App) -> Any:
    """The model's gpu_layers as the balancer's API answers it."""
    models = gui.run(gui.desktop.state.client.models())
    return next(m["gpu_layers"] for m in models if m["id"] == CHAT_REPO)


def tooltip(local: LocalPage) -> str:
    """What hovering the first row's model name shows."""
    item = local.table.item(0, 0)
    return item.toolTip() if item is not None else ""


def open_from_menu(gui: App, local: LocalPage) -> GpuLayersDialog:
    """Right-click the first row and pick "GPU layers and context…"; the dialog it opens."""
    first = local.table.item(0, 0)
    assert first is not None
    rect = local.table.visualItemRect(first)
    local.table.customContextMenuRequested.emit(rect.center())
    menu = gui.wait(lambda: next((m for m in local.findChildren(QMenu) if m.isVisible()), None))
    [action] = [a for a in menu.actions() if a.text() == "GPU layers and context…"]
    action.trigger()
    menu.close()
    dialog = local.dialog
    assert dialog is not None
    gui.wait(dialog.isVisible)
    return dialog


def test_gpu_layers_are_set_per_model_from_the_local_page(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    window.models.setCurrentWidget(window.local)
    local = window.local
    gui.desktop.state.register(repo=CHAT_REPO)
    gui.wait(lambda: local.table.rowCount() == 1 and local.table.item(0, 0) is not None)
    assert "GPU layers: Auto" in tooltip(local)

    dialog = open_from_menu(gui, local)
    assert dialog.value() is None and not dialog.layers.isEnabled()  # Auto, as registered
    dialog.buttons_by_id[LAYERS].click()
    assert dialog.layers.isEnabled()
    dialog.layers.setValue(7)
    gui.screenshot(dialog, "gpu-layers-dialog")
    dialog.submit()
    gui.wait(lambda: not dialog.isVisible())
    assert api_value(gui) == 7
    gui.wait(lambda: "GPU layers: 7 layers" in tooltip(local))

    again = open_from_menu(gui, local)  # opens on the value in force
    assert again.buttons_by_id[LAYERS].isChecked() and again.layers.value() == 7
    again.buttons_by_id[CPU].click()
    again.submit()
    gui.wait(lambda: not again.isVisible())
    assert api_value(gui) == 0
    gui.wait(lambda: "GPU layers: CPU only" in tooltip(local))

    # The context per conversation, in the same dialog: Auto (the node's) or a number.
    third = open_from_menu(gui, local)
    assert third.context_auto.isChecked() and not third.context.isEnabled()
    third.context_auto.setChecked(False)
    third.context.setValue(2048)
    third.submit()
    gui.wait(lambda: not third.isVisible())
    models = gui.run(gui.desktop.state.client.models())
    entry = next(m for m in models if m["id"] == CHAT_REPO)
    assert (entry["gpu_layers"], entry.get("context_size")) == (0, 2048)


def test_a_refused_change_keeps_the_dialog_open_with_the_reason(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    window.models.setCurrentWidget(window.local)
    local = window.local
    gui.desktop.state.register(repo=CHAT_REPO)
    gui.wait(lambda: local.table.rowCount() == 1 and local.table.item(0, 0) is not None)
    dialog = open_from_menu(gui, local)
    gui.run(gui.desktop.state.client.delete_model(CHAT_REPO))  # gone meanwhile (another admin)
    dialog.buttons_by_id[ALL].click()
    dialog.submit()
    gui.wait(lambda: dialog.error.isVisibleTo(dialog))
    assert "not registered" in dialog.error.text()
    assert dialog.isVisible() and dialog.buttons.isEnabled()


def test_each_setting_reads_as_words() -> None:
    assert [describe(v) for v in (None, -1, 0, 1, 12)] == [
        "Auto",
        "All layers",
        "CPU only",
        "1 layer",
        "12 layers",
    ]
