"""A remote balancer the desktop app manages: its URL, and its admin token kept in the OS keyring.

The token is a credential we send, so it must stay readable; the vault keeps it in the OS
keyring (or a 0600 file next to the desktop settings where there is none), never in the
settings file, which people copy and paste into bug reports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from app.core.errors import StartupError
from app.core.tls import normalize_fingerprint
from app.core.vault import Vault


class BadServerUrl(StartupError):
    """A server address that is not an http(s) URL with a host (or a bad fingerprint)."""


def pinned(fingerprint: str | None) -> str | None:
    """A fingerprint as typed, in our form (None for none given)."""
    if not fingerprint or not fingerprint.strip():
        return None
    try:
        return normalize_fingerprint(fingerprint)
    except ValueError as exc:
        raise BadServerUrl(str(exc)) from exc


def normalize_url(url: str) -> str:
    """`host:8080`, `http://host:8080/` or `http://host:8080/v1` as `http://host:8080`."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url  # what people type: the balancer's host and port
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadServerUrl(f"not a server address: {url!r} (for example http://192.168.1.20:8080)")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise BadServerUrl(f"not a server address: {url!r} ({exc})") from exc
    path = parts.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else path  # the OpenAI URL, pasted
    return f"{parts.scheme}://{parts.netloc}{path}"


def in_clear(url: str) -> bool:
    """Whether the admin token would cross a network unencrypted (http beyond this machine)."""
    parts = urlsplit(normalize_url(url))
    return parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1")


def remote_instance_key(url: str) -> str:
    """The hand-over socket's name for a window on this server (one window per server)."""
    return "llmlb-remote-" + hashlib.sha256(normalize_url(url).encode()).hexdigest()[:16]


class RemoteTokens:
    """Admin tokens of remote servers, by URL, in the OS keyring (the vault)."""

    def __init__(self, config_dir: Path) -> None:
        config_dir.mkdir(parents=True, exist_ok=True)  # the file fallback writes there
        self.vault = Vault(config_dir)

    @staticmethod
    def _name(url: str) -> str:
        return "remote-admin:" + normalize_url(url)

    def get(self, url: str) -> str | None:
        """The token kept for `url`, or None."""
        return self.vault.get(self._name(url))

    def set(self, url: str, token: str) -> None:
        """Keep `token` for `url` (replacing an older one)."""
        self.vault.set(self._name(url), token)

    def forget(self, url: str) -> None:
        """Drop the token kept for `url`."""
        self.vault.delete(self._name(url))

    def pin(self, url: str) -> str | None:
        """The TLS certificate fingerprint kept for an https `url` (its self-made one)."""
        return self.vault.get("remote-tls:" + normalize_url(url))

    def set_pin(self, url: str, fingerprint: str) -> None:
        """Keep the fingerprint the server's certificate must have."""
        self.vault.set("remote-tls:" + normalize_url(url), fingerprint)
