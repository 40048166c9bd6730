"""Secrets we must send again (join token, external servers' keys) stay out of the database:
in the OS keyring when there is one, else in a file only the user can read."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import null
from keyrings.alt.file import PlaintextKeyring

from app.core.vault import FALLBACK_FILE, Vault


@pytest.fixture
def os_keyring() -> Iterator[PlaintextKeyring]:
    """A real keyring backend (keyrings.alt's file keyring under the test's HOME)."""
    before = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(before)


def test_secrets_go_to_the_os_keyring_when_there_is_one(
    tmp_path: Path, os_keyring: PlaintextKeyring
) -> None:
    vault = Vault(tmp_path)
    vault.set("join_token", "llmlb-join-secret")
    assert Vault(tmp_path).get("join_token") == "llmlb-join-secret"  # a new process reads it
    assert not (tmp_path / FALLBACK_FILE).exists()
    assert "keyring" in vault.where
    # Another data dir is another profile: it does not see this one's secrets.
    assert Vault(tmp_path / "other").get("join_token") is None
    vault.delete("join_token")
    assert vault.get("join_token") is None
    vault.delete("join_token")  # forgetting twice is no error


def test_without_a_keyring_secrets_live_in_a_private_file(
    tmp_path: Path, no_keyring: None, caplog: pytest.LogCaptureFixture
) -> None:
    vault = Vault(tmp_path)
    assert "no OS keyring" in caplog.text  # said in the log
    vault.set("external:abc", "their-key")
    vault.set("join_token", "tok")
    path = tmp_path / FALLBACK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reopened = Vault(tmp_path)
    assert (reopened.get("external:abc"), reopened.get("join_token")) == ("their-key", "tok")
    reopened.delete("external:abc")
    assert Vault(tmp_path).get("external:abc") is None
    # A damaged file loses nothing else and breaks nothing: it reads as empty.
    path.write_text("{not json")
    assert Vault(tmp_path).get("join_token") is None
