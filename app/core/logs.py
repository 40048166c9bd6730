"""Logging to stderr and to a rotating file in the data dir."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from typing import Any

from app.core.paths import make_private

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that only the user can read (it names models, nodes and errors)."""

    def _open(self) -> Any:
        stream = super()._open()
        make_private(Path(self.baseFilename))
        return stream


def setup_logging(data_dir: Path | None, level: int = logging.INFO) -> None:
    """Configure the root logger once (idempotent: handlers are replaced, not added)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_llmlb", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if data_dir is not None:
        (data_dir / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            PrivateRotatingFileHandler(
                data_dir / "logs" / "llmlb.log",
                maxBytes=5_000_000,
                backupCount=3,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._llmlb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
