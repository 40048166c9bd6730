"""Where llmlb keeps its files: the user data dir, or LLMLB_DATA_DIR / --data-dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from app.core.errors import StartupError

APP_NAME = "llmlb"


def default_data_dir() -> Path:
    """The data dir when none is given: LLMLB_DATA_DIR, else the platform's user data dir."""
    env = os.environ.get("LLMLB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private(path: Path) -> None:
    """Only the user may read `path` (tokens, prompts and keys live in the data dir)."""
    try:
        path.chmod(PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
    except FileNotFoundError:
        pass


def ensure_data_dir(path: Path) -> Path:
    """Create the data dir (readable by the user alone) and prove it is writable, or raise
    StartupError."""
    path = path.expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        make_private(path)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StartupError(f"cannot write to the data dir {path}: {reason}") from exc
    return path


def resource_root() -> Path:
    """The folder holding catalog/ and resources/: the bundle's, an installed wheel's
    (app/_data/, copied by setup.py), or the source tree's."""
    bundled = getattr(sys, "_MEIPASS", None)
    if bundled:
        return Path(bundled)
    installed = Path(__file__).resolve().parents[1] / "_data"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2]
