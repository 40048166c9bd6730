"""Settings' Help button opens the project's README in the desktop's handler for it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from app.ui.help import ROOT, readme_file
from tests.ui.conftest import App


class Opened(QObject):
    """Stands in for the desktop's file viewer (outside our product): records what it got."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_help_in_settings_opens_the_readme(gui: App) -> None:
    window = gui.desktop.window
    window.show_page("Settings")
    viewer = Opened()
    # PySide6 wants the slot's name as str at run time; its stubs say bytes.
    QDesktopServices.setUrlHandler("file", viewer, "open")  # type: ignore[arg-type]
    try:
        button = window.settings.help_button
        assert button.isVisible() and button.accessibleName() == "Help: open the README"
        button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    [url] = viewer.urls
    opened = Path(url.toLocalFile())
    assert opened == ROOT / "README.md"
    assert opened.read_text(encoding="utf-8").startswith("# llmlb")


def test_an_install_without_the_file_opens_the_packages_own_readme(tmp_path: Path) -> None:
    """A wheel (pipx) has no README.md beside the app: its metadata's copy is written out."""
    path = readme_file(root=tmp_path / "nothing-here", spill=tmp_path / "help")
    assert path == tmp_path / "help" / "README.md"
    assert "llmlb" in path.read_text(encoding="utf-8")
