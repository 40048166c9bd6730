"""The Overview and Settings as a first-hour user meets them: the endpoint, keys and the LAN."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QLineEdit, QScrollArea, QWidget

from app.ui.main_window import PAGES
from tests.conftest import CHAT_REPO
from tests.ui.conftest import App
from tests.ui.test_desktop import click_confirm
from tests.ui.test_playground import ready_chat


async def _v1_models(app: App, key: str | None = None) -> int:
    """What a tool on the endpoint gets from GET /v1/models (with this key, or none)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(app.ctx.base_url + "/v1/models", headers=headers) as r:
            return r.status


def test_overview_snippet_and_addresses_follow_keys_and_the_lan(
    gui: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = gui.desktop.window
    window.show_page("Overview")
    overview, state = window.overview, gui.desktop.state
    gui.wait(lambda: state.cluster is not None)
    assert 'api_key="unused"' in overview.hint.text()  # open on loopback with no key
    assert gui.run(_v1_models(gui)) == 200
    assert not overview.keys_button.isVisibleTo(window)

    key = gui.run(gui.desktop.client.create_api_key("editor"))
    state.refresh()
    gui.wait(lambda: "use one of your API keys" in overview.hint.text())
    assert gui.run(_v1_models(gui)) == 401  # what "unused" would have got
    assert "unused" not in overview.hint.text() and "Settings → API keys" in overview.hint.text()
    assert overview.keys_button.isVisibleTo(window)
    overview.keys_button.click()
    assert window.pages.currentWidget() is window.settings
    gui.run(gui.desktop.client.revoke_api_key(key["id"]))

    # Serving the LAN: the balancer announces its LAN address (multicast kept on loopback).
    monkeypatch.setenv("LLMLB_MDNS_INTERFACES", "127.0.0.1")
    ctx = gui.ctx
    assert ctx.balancer is not None
    gui.run(ctx.discovery.start("192.0.2.7", ctx.port))
    ctx.balancer.auth.loopback_only = False  # as when bound to the LAN
    lan_url = f"http://192.0.2.7:{ctx.port}"
    state.refresh()
    window.show_page("Overview")
    gui.wait(lambda: overview.url.text() == lan_url + "/v1")
    assert "none exists yet" in overview.hint.text()
    assert f'base_url="{lan_url}/v1"' in overview.hint.text()
    assert "127.0.0.1" not in overview.hint.text()
    assert gui.run(_v1_models(gui)) == 401
    overview.copy_url()
    assert QGuiApplication.clipboard().text() == lan_url + "/v1"
    window.nodes.refresh()
    assert f"--balancer {lan_url}</code>" in window.nodes.join.text()
    gui.screenshot(window, "overview-lan")


def test_an_empty_first_launch_leads_to_the_model_hub(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Overview")
    overview = window.overview
    gui.wait(lambda: overview.empty.isVisibleTo(window))
    gui.screenshot(window, "overview-first-launch")
    window.models.setCurrentWidget(window.local)  # wherever the Models page was left
    overview.get_model.click()
    assert window.pages.currentWidget() is window.models
    assert window.models.currentWidget() is window.hub
    assert window.focusWidget() is window.hub.search  # typing searches at once
    gui.desktop.state.register(repo=CHAT_REPO)
    gui.wait(lambda: not overview.empty.isVisibleTo(window))


def test_lan_without_a_key_warns_and_a_new_key_can_be_copied_then_is_gone_when_revoked(
    gui: App,
) -> None:
    window = gui.desktop.window
    window.show_page("Settings")
    page = window.settings
    gui.wait(lambda: page.join_token.text().startswith("llmlb-join-"))
    assert not page.lan_warning.isVisibleTo(window)
    page.lan.setChecked(True)
    assert page.lan_warning.isVisibleTo(window)  # /v1 would answer 401 to every tool
    gui.screenshot(window, "settings-lan-without-key")
    page.lan_create_key.click()
    gui.wait(lambda: page.keys.count() == 1)
    assert "sk-llmlb-" in page.new_key.text()
    assert not page.lan_warning.isVisibleTo(window)
    assert page.copy_key.isVisibleTo(window)
    page.copy_key.click()
    secret = QGuiApplication.clipboard().text()
    assert secret.startswith("sk-llmlb-") and secret in page.new_key.text()
    gui.screenshot(window, "settings-new-key")

    assert "never used" in page.keys.item(0).text()
    assert gui.run(_v1_models(gui, secret)) == 200
    gui.desktop.state.refresh()
    gui.wait(lambda: "used just now" in page.keys.item(0).text())

    page.keys.setCurrentRow(0)
    page.revoke_key.click()
    click_confirm(gui, page)
    assert secret not in page.new_key.text()
    assert not page.copy_key.isVisibleTo(window)
    gui.wait(lambda: page.keys.count() == 0)
    assert page.lan_warning.isVisibleTo(window)  # none left


def test_a_key_revoked_elsewhere_takes_its_secret_off_the_screen(gui: App) -> None:
    page = gui.desktop.window.settings
    page.key_name.setText("ci")
    page.create_key.click()
    gui.wait(lambda: page.keys.count() == 1 and "sk-llmlb-" in page.new_key.text())
    key_id: Any = gui.desktop.state.api_keys[0]["id"]
    gui.run(gui.desktop.client.revoke_api_key(key_id))  # from another admin tool
    gui.desktop.state.refresh()
    gui.wait(lambda: page.keys.count() == 0)
    assert "sk-llmlb-" not in page.new_key.text()


def _clipped(page: QWidget) -> list[str]:
    """What a user would see cut on `page`: a one-line label narrower than its text, a field
    narrower than its placeholder, anything wider than the scroll area that holds it."""
    cut = []
    for label in page.findChildren(QLabel):
        if label.isVisibleTo(page) and not label.wordWrap() and label.text():
            if label.width() < label.minimumSizeHint().width():
                cut.append(f"label {label.text()[:40]!r}: {label.width()}px")
    for field in page.findChildren(QLineEdit):
        hint = field.placeholderText()
        if field.isVisibleTo(page) and hint and not field.text():
            needed = field.fontMetrics().horizontalAdvance(hint) + 12  # frame and margins
            if field.width() < needed:
                cut.append(f"field {hint!r}: {field.width()}px < {needed}px")
    for area in page.findChildren(QScrollArea):
        if area.isVisibleTo(page) and area.horizontalScrollBar().maximum() > 0:
            cut.append(f"scroll area {area.accessibleName()!r} scrolls sideways")
    return cut


def test_every_page_fits_a_window_of_800_by_600(gui: App) -> None:
    window = gui.desktop.window
    window.show()
    window.resize(800, 600)
    gui.settle(0.1)
    hint = window.minimumSizeHint()
    assert hint.width() <= 800 and hint.height() <= 600, hint
    assert (window.width(), window.height()) == (800, 600)
    chat = window.playground.chat
    window.settings.lan.setChecked(True)  # its warning shown too
    # An answer with its figures (tokens, speed, the node's id) and Retry: one line of them
    # was once wider than the transcript, which then scrolled sideways, cutting every message.
    ready_chat(gui)
    chat.max_tokens.setValue(8)
    chat.input.setPlainText("Hello there")
    chat.send()
    gui.wait(lambda: chat.task is not None and chat.task.done(), timeout=30)
    chat.widgets[-1].show_error("the node went away before it answered")
    for name in PAGES:
        window.show_page(name)
        gui.settle(0.1)
        page = window.pages.currentWidget()
        assert page is not None
        assert _clipped(page) == [], name
        gui.screenshot(window, f"window-800x600-{name.lower()}")
    # The Playground's settings stay readable (they shrank to "s…" at 908 px).
    window.show_page("Playground")
    for field in (chat.seed, chat.stop_words):
        width = field.fontMetrics().horizontalAdvance(field.placeholderText())
        assert field.width() >= width, field.accessibleName()
