"""The admin token (LLMLB_ADMIN_TOKEN, else a 0600 file in the data dir made on first start)
and the balancer's node secret (a 0600 file), from which it proves itself to its nodes."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from app.core.errors import StartupError

TOKEN_FILE = "admin_token"
MIN_TOKEN_LENGTH = 16  # a token set by hand must not be guessable (ours have 32+ random chars)
NODE_SECRET_FILE = "node_secret"


def load_admin_token(data_dir: Path) -> tuple[str, bool]:
    """(token, created_now): created_now is True the one time a new token was written."""
    env = os.environ.get("LLMLB_ADMIN_TOKEN", "").strip()
    if env:
        check_strength(env, "LLMLB_ADMIN_TOKEN")
        return env, False
    return _read_or_create(data_dir / TOKEN_FILE, "llmlb-admin-", "the admin token")


def same_secret(presented: str | None, expected: str) -> bool:
    """Constant-time comparison that takes whatever a hostile client sends: compare_digest
    refuses non-ASCII text, and a header's undecodable bytes arrive as lone surrogates."""
    if presented is None or not expected:
        return False
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def check_strength(token: str, name: str) -> None:
    """Refuse a hand-set token too short or too plain to resist guessing over the network."""
    if len(token) < MIN_TOKEN_LENGTH or len(set(token)) < 6:
        raise StartupError(
            f"{name} is too weak: use at least {MIN_TOKEN_LENGTH} characters, not a word "
            "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )


def load_node_secret(data_dir: Path) -> str:
    """The balancer's own secret: each node's balancer token is an HMAC of it, so the
    database alone holds no credential a node accepts."""
    return _read_or_create(data_dir / NODE_SECRET_FILE, "", "the node secret")[0]


def _read_or_create(path: Path, prefix: str, what: str) -> tuple[str, bool]:
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StartupError(f"cannot read {what} {path}: {exc.strerror}") from exc
    token = prefix + secrets.token_urlsafe(32 if not prefix else 24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StartupError(f"cannot write {what} {path}: {exc.strerror}") from exc
    return token, True
