"""After a restart, a model already on disk shows its size, not 0 B, on Local and Nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import qasync

from tests.conftest import balancer_settings, run_balancer
from tests.fakes.fake_hub import FakeHub
from tests.node.conftest import register_ready
from tests.node.test_ready_after_restart import PLAIN_REPO, add_plain_repo
from tests.ui.conftest import App


@pytest.fixture
def restarted_gui(
    request: pytest.FixtureRequest,
    qloop: qasync.QEventLoop,
    tmp_path: Path,
    model_hub: FakeHub,
    tiny_models: dict[str, bytes],
) -> App:
    """The app started on a data folder where a model (without a sha256 to check) was
    downloaded in an earlier run."""
    add_plain_repo(model_hub, tiny_models)

    async def earlier_run() -> None:
        settings = balancer_settings(tmp_path / "data", local_node=True, context_size=4096)
        async with run_balancer(settings) as b:
            await register_ready(b, PLAIN_REPO)

    App(qloop, None, None, []).run(earlier_run())  # type: ignore[arg-type]
    gui: App = request.getfixturevalue("gui")
    return gui


def test_local_and_nodes_show_the_size_of_a_model_ready_since_the_last_run(
    restarted_gui: App, tiny_models: dict[str, Any]
) -> None:
    gui = restarted_gui
    window = gui.desktop.window
    window.show_page("Models")
    window.models.setCurrentWidget(window.local)
    local = window.local
    gui.wait(lambda: local.table.rowCount() == 1 and local.table.item(0, 6).text() != "—")
    assert "ready" in local.table.item(0, 1).text()
    assert local.table.item(0, 2).text() == "100% of 732.4 KB"
    gui.screenshot(window, "local-after-restart")
    window.show_page("Nodes")
    page = window.nodes
    gui.wait(lambda: page.model.all)
    page.table.selectRow(0)
    assert "tiny/plain-gguf: ready, 732.4 KB of 732.4 KB" in page.detail.toPlainText()
