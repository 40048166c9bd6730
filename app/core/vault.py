"""Secrets the app must be able to read back (the join token, external servers' API keys):
the OS keyring through `keyring`, or, where no keyring exists, a file only the user can read.

Hashes are enough for what we only check (API keys, node tokens); these are secrets we send,
so they must stay readable, and the database is the wrong place for them: it is copied,
backed up and shared in bug reports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from app.core.paths import PRIVATE_FILE

log = logging.getLogger(__name__)
SERVICE = "llmlb"
FALLBACK_FILE = "secrets.json"


def _usable_keyring() -> Any | None:
    """The OS keyring backend, or None when only keyring's placeholder backends exist."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:  # pragma: no cover - keyring is a declared dependency
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration is no keyring
        return None
    if isinstance(backend, fail.Keyring | null.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return backend


class Vault:
    """get/set/delete secrets by name, in the OS keyring or a 0600 file in the data dir."""

    def __init__(self, data_dir: Path, use_keyring: bool = True) -> None:
        # Several data dirs (profiles, tests) share one keyring: each keeps to its own names.
        self.scope = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
        self.path = data_dir / FALLBACK_FILE
        self._backend = _usable_keyring() if use_keyring else None
        if self._backend is None:
            log.warning(
                "no OS keyring is available; secrets are kept in %s, readable by this user only",
                self.path,
            )

    @property
    def where(self) -> str:
        """Where secrets live, in words (for the log and the Settings page)."""
        if self._backend is not None:
            return f"the OS keyring ({type(self._backend).__name__})"
        return f"the file {self.path}"

    def _key(self, name: str) -> str:
        return f"{self.scope}:{name}"

    def get(self, name: str) -> str | None:
        """The secret, or None when none is stored."""
        if self._backend is not None:
            try:
                value = self._backend.get_password(SERVICE, self._key(name))
                return value if isinstance(value, str) else None
            except Exception as exc:
                log.warning("the keyring did not answer (%s); reading the file instead", exc)
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        """Store (or replace) a secret."""
        if self._backend is not None:
            try:
                self._backend.set_password(SERVICE, self._key(name), value)
                return
            except Exception as exc:
                log.warning("the keyring refused the secret (%s); using the file instead", exc)
        data = self._read()
        data[name] = value
        self._write(data)

    def delete(self, name: str) -> None:
        """Forget a secret (no error when there is none)."""
        if self._backend is not None:
            try:
                self._backend.delete_password(SERVICE, self._key(name))
            except Exception:  # keyring raises PasswordDeleteError for a missing entry
                pass
        data = self._read()
        if data.pop(name, None) is not None:
            self._write(data)

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("cannot read the secrets file %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _write(self, data: dict[str, str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, self.path)
