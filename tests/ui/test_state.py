"""The GUI follows the balancer from its events: progress moves a card without a fetch,
a deletion made elsewhere removes the card, a finished download is announced once, and a
dropped events socket is followed by one full refresh."""

from __future__ import annotations

from typing import Any

from app.server.events_ws import SOCKETS
from app.ui.client import ApiClient
from tests.fakes.fake_hub import FakeRepo
from tests.node.conftest import CHAT_REPO
from tests.ui.conftest import App

MODEL_PATHS = ("/v0/models", "/v0/models/hub")
BROKEN = "acme/broken-gguf"


def record_calls(gui: App) -> list[tuple[str, str]]:
    """Every /v0 call the GUI makes from now on, as (method, path)."""
    client = gui.desktop.state.client
    calls: list[tuple[str, str]] = []
    real = client._call

    async def counted(method: str, path: str, body: Any = None) -> Any:
        calls.append((method, path))
        return await real(method, path, body)

    client._call = counted  # type: ignore[method-assign]
    return calls


def another_admin(gui: App) -> ApiClient:
    """A second client of the same balancer: what it changes, the GUI learns from events."""
    return ApiClient(gui.ctx.base_url, gui.ctx.admin_token, fingerprint=gui.ctx.tls_fingerprint)


def test_progress_moves_the_card_without_fetching_and_ready_is_announced_once(
    gui: App, tiny_models: dict[str, bytes], model_hub: Any
) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    state = gui.desktop.state
    state.poll_timer.stop()  # the slow fallback poll stays out of the count
    model_hub.bytes_per_second = len(tiny_models["chat"]) / 8
    calls = record_calls(gui)
    state.register(repo=CHAT_REPO)
    cards = window.hub.cards
    gui.wait(lambda: CHAT_REPO in cards and cards[CHAT_REPO].progress.value() > 0)
    card = cards[CHAT_REPO]
    seen = card.progress.value()
    calls.clear()
    gui.wait(lambda: card.progress.value() > seen)  # the node's next heartbeat
    assert card.status.state == "downloading"
    assert not [c for c in calls if c[1] in MODEL_PATHS], calls  # patched from the event

    gui.wait(lambda: card.status.state == "ready", timeout=30)
    tray = gui.desktop.tray
    finished = [n for n in tray.notifications if n[0] == "Download finished"]
    assert finished == [("Download finished", "chat-gguf is ready to use")]
    # A full refresh later (the data says "ready" again) announces nothing more.
    refreshed: list[bool] = []
    state.hubChanged.connect(lambda: refreshed.append(True))
    state.refresh()
    gui.wait(lambda: refreshed)
    assert [n for n in tray.notifications if n[0] == "Download finished"] == finished


def test_a_model_registered_and_deleted_elsewhere_comes_and_goes(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Models")
    gui.desktop.state.poll_timer.stop()
    other = another_admin(gui)
    try:
        gui.run(other.register(repo=CHAT_REPO))
        cards = window.hub.cards
        gui.wait(lambda: CHAT_REPO in cards)
        gui.run(other.delete_model(CHAT_REPO))
        gui.wait(lambda: CHAT_REPO not in cards)
        assert CHAT_REPO not in [m["id"] for m in gui.desktop.state.models]
    finally:
        gui.run(other.close())


def test_after_the_events_socket_drops_one_full_refresh(gui: App) -> None:
    state = gui.desktop.state
    state.poll_timer.stop()
    gui.wait(lambda: state.connected)
    calls = record_calls(gui)
    assert gui.ctx.runner is not None
    sockets = gui.ctx.runner.app[SOCKETS]
    for ws in list(sockets):
        gui.run(ws.close())  # as a proxy or a sleeping laptop would
    everything = {
        ("GET", p)
        for p in ("/v0/models/hub", "/v0/models", "/v0/nodes", "/v0/cluster", "/v0/api-keys")
    } | {("GET", "/v0/serving")}
    gui.wait(lambda: everything <= set(calls), timeout=15)
    assert state.connected


def test_a_failed_download_is_announced_once_with_the_reason(gui: App, model_hub: Any) -> None:
    model_hub.add(FakeRepo(BROKEN, {"broken-Q4_K_M.gguf": b"not a model " * 100}))
    window = gui.desktop.window
    window.show_page("Models")
    state = gui.desktop.state
    state.register(repo=BROKEN)  # the node fetches it, finds no GGUF inside, and gives up
    cards = window.hub.cards
    gui.wait(lambda: BROKEN in cards and cards[BROKEN].status.state == "error")
    tray = gui.desktop.tray
    failed = [n for n in tray.notifications if n[0] == "Download failed"]
    assert len(failed) == 1 and failed[0][1].startswith("broken-gguf: ")
    assert cards[BROKEN].error.text() and cards[BROKEN].error.text() in failed[0][1]
    refreshed: list[bool] = []
    state.hubChanged.connect(lambda: refreshed.append(True))
    state.refresh()
    gui.wait(lambda: refreshed)
    assert [n for n in tray.notifications if n[0] == "Download failed"] == failed
