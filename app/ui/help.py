"""Help: the project's README, opened from the app in the desktop's own viewer or browser."""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

# The checkout's root, or the bundle's (build.spec places README.md at the top of it).
ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "llmlb"


def readme_file(root: Path = ROOT, spill: Path | None = None) -> Path | None:
    """The README to open: the one beside the app, else the installed package's own copy (a
    wheel or pipx install keeps it as its description) written to `spill`; None without."""
    beside = root / "README.md"
    if beside.is_file():
        return beside
    try:
        text = importlib.metadata.metadata(DISTRIBUTION).json.get("description")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    target = (spill or Path(tempfile.gettempdir()) / "llmlb-help") / "README.md"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError:
        return None
    return target


def open_readme(root: Path = ROOT, spill: Path | None = None) -> bool:
    """Open the README with the desktop's handler for it; False when there is none to open."""
    path = readme_file(root, spill)
    return path is not None and QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
