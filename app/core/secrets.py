"""The admin token: LLMLB_ADMIN_TOKEN, else a 0600 file in the data dir made on first start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from app.core.errors import StartupError

TOKEN_FILE = "admin_token"


def load_admin_token(data_dir: Path) -> tuple[str, bool]:
    """(token, created_now): created_now is True the one time a new token was written."""
    env = os.environ.get("LLMLB_ADMIN_TOKEN", "").strip()
    if env:
        return env, False
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StartupError(f"cannot read the admin token {path}: {exc.strerror}") from exc
    token = "llmlb-admin-" + secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StartupError(f"cannot write the admin token {path}: {exc.strerror}") from exc
    return token, True
