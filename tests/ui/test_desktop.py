"""The desktop app as a user drives it: cards, search, register, badges, delete, tray, theme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QPushButton

from tests.node.conftest import CHAT_REPO
from tests.ui.conftest import App


def click_confirm(app: App, widget, accept: bool = True) -> None:
    box = widget.property("confirmation")
    assert isinstance(box, QMessageBox) and box.isVisible()
    if accept:
        [yes] = [
            b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.DestructiveRole
        ]
        yes.click()
    else:
        box.button(QMessageBox.StandardButton.Cancel).click()
    app.settle(0.05)


def test_the_hub_shows_the_catalog_as_cards_and_search_filters(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    hub = window.hub
    assert window.models.currentWidget() is hub  # the Model Hub is the default sub-tab
    ids = [m["id"] for m in gui.desktop.state.hub]
    assert list(hub.cards) == ids
    card = hub.cards["qwen3"]
    assert card.title.text() == "Qwen3 0.6B"
    assert "484.2 MB file" in card.meta.text() and "32k context" in card.meta.text()
    assert card.status.state == "available" and card.button.text() == "Register"
    assert card.fit_badge.state == "fits"
    assert hub.cards["qwq"].fit_badge.state == "too_big"  # 29.8 GB on a 16 GB machine
    hub.search.setText("gran")
    visible = [k for k, c in hub.cards.items() if c.isVisibleTo(hub)]
    assert visible and all("granite" in k for k in visible)
    hub.search.setText("no such model at all")
    assert hub.empty.isVisibleTo(hub) and "No model matches" in hub.empty.text()
    hub.search.clear()
    assert all(c.isVisibleTo(hub) for c in hub.cards.values())


def test_register_from_the_dialog_watch_it_get_ready_then_delete(
    gui: App, tiny_models: dict[str, bytes], model_hub
) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 6
    dialog = window.hub.open_register_dialog()
    dialog.repo.setText("https://example.com/not/huggingface")
    dialog.submit()
    gui.wait(lambda: dialog.error.isVisibleTo(dialog))
    assert "not a Hugging Face URL" in dialog.error.text()  # the server's reason, as is
    dialog.repo.setText(CHAT_REPO)
    dialog.submit()
    gui.wait(lambda: not dialog.isVisible())
    cards = window.hub.cards
    gui.wait(lambda: CHAT_REPO in cards)
    card = cards[CHAT_REPO]
    gui.wait(lambda: card.status.state == "downloading" and card.progress.value() > 0)
    assert card.progress.isVisibleTo(card) and "of" in card.progress.format()
    assert card.button.text() == "Cancel"
    gui.screenshot(window, "model-hub-downloading")
    gui.wait(lambda: card.status.state == "ready", timeout=30)
    assert card.status.text().startswith("✓") and card.button.text() == "Delete"
    gui.wait(lambda: any(t == "Download finished" for t, _ in gui.desktop.tray.notifications))

    window.models.setCurrentWidget(window.local)
    local = window.local
    gui.wait(lambda: local.table.rowCount() == 1)
    assert local.table.item(0, 0).text() == "chat-gguf"
    assert "ready" in local.table.item(0, 1).text()
    assert local.table.item(0, 6).text().endswith("tiny-chat-F32.gguf")
    gui.screenshot(window, "local")

    delete = local.table.cellWidget(0, 7)
    assert isinstance(delete, QPushButton)
    delete.click()
    click_confirm(gui, local, accept=False)  # Cancel keeps it
    gui.settle(0.3)
    assert CHAT_REPO in [m["id"] for m in gui.desktop.state.models]
    delete.click()
    click_confirm(gui, local)
    gui.wait(lambda: not gui.desktop.state.models)
    gui.wait(lambda: CHAT_REPO not in cards)


def test_register_and_delete_from_a_catalog_card(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    card = window.hub.cards["phi4"]
    card.button.click()
    gui.wait(lambda: card.status.state in {"registered", "downloading", "error"})
    gui.wait(lambda: card.button.text() in {"Cancel", "Delete"})
    card.button.click()
    click_confirm(gui, window.hub)
    gui.wait(lambda: card.status.state == "available")
    assert card.button.text() == "Register"


def test_a_failed_action_says_why_in_the_banner(gui: App) -> None:
    window = gui.desktop.window
    gui.desktop.state.register(model_id="not-in-the-catalog")
    gui.wait(lambda: window.banner.isVisibleTo(window))
    assert "not in the catalog" in window.banner.label.text()


def test_tray_menu_actions(gui: App) -> None:
    tray = gui.desktop.tray
    window = gui.desktop.window
    labels = [a.text() for a in tray.menu.actions() if a.text()]
    assert labels[:2] == ["Open", "Copy endpoint URL"] and "Quit" in labels
    tray.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == f"{gui.ctx.base_url}/v1"
    window.hide()
    tray.open_action.trigger()
    assert window.isVisible()
    assert tray.current == "idle"
    tray.pause_action.trigger()
    gui.wait(lambda: gui.desktop.state.serving_paused and tray.current == "paused")
    assert tray.pause_action.text() == "Resume serving"
    assert gui.ctx.balancer is not None and gui.ctx.balancer.paused
    tray.pause_action.trigger()
    gui.wait(lambda: not gui.desktop.state.serving_paused)
    tray.quit_action.trigger()
    assert gui.quit_requested == [True]


def test_dark_scheme_is_followed_live(gui: App, qapp) -> None:
    hints = QGuiApplication.styleHints()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # what the OS sends on a switch
    gui.settle(0.1)
    try:
        assert qapp.palette().window().color().lightness() < 60
        gui.desktop.window.show_page("Models")
        gui.screenshot(gui.desktop.window, "model-hub-dark")
    finally:
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        gui.settle(0.1)
    assert qapp.palette().window().color().lightness() > 200


def test_overview_counts_and_screenshots(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Overview")
    overview = window.overview
    gui.wait(lambda: overview.numbers["Nodes online"].text() == "1 / 1")
    assert overview.url.text() == f"{gui.ctx.base_url}/v1"
    gui.screenshot(window, "overview")
    window.show_page("Models")
    gui.screenshot(window, "model-hub")
    window.show_page("Settings")
    gui.screenshot(window, "settings")


def test_settings_are_saved_and_say_what_needs_a_restart(gui: App) -> None:
    from app.core.desktop_config import DesktopConfig

    page = gui.desktop.window.settings
    page.port.setValue(40000)
    page.idle.setValue(5)
    page.save_button.click()
    assert "Restart llmlb to apply: Port, Unload idle models after" in page.result.text()
    saved = DesktopConfig.load()
    assert saved.port == 40000 and saved.idle_unload_ttl == 300.0
