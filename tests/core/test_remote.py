"""A remote server's address as people type it, and what is kept for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.remote import BadServerUrl, RemoteTokens, in_clear, normalize_url, pinned


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("192.168.1.20:8080", "http://192.168.1.20:8080"),
        ("http://box.local:8080/", "http://box.local:8080"),
        ("https://box.local:8443/v1", "https://box.local:8443"),  # the OpenAI URL, pasted
        ("  http://[::1]:8080  ", "http://[::1]:8080"),
    ],
)
def test_an_address_as_typed_names_one_server(typed: str, url: str) -> None:
    assert normalize_url(typed) == url


@pytest.mark.parametrize("typed", ["ftp://box", "http://", "http://box:port", ""])
def test_what_is_no_server_address_is_refused_in_words(typed: str) -> None:
    with pytest.raises(BadServerUrl, match="not a server address"):
        normalize_url(typed)


def test_only_plain_http_beyond_this_machine_counts_as_in_the_clear() -> None:
    assert in_clear("http://192.168.1.20:8080")
    assert not in_clear("https://192.168.1.20:8443")
    assert not in_clear("http://127.0.0.1:8080") and not in_clear("localhost:8080")


def test_a_token_and_pin_are_kept_per_server_whatever_its_spelling(tmp_path: Path) -> None:
    tokens = RemoteTokens(tmp_path / "config")
    tokens.set("box.local:8080/v1", "llmlb-admin-secret")
    tokens.set_pin("box.local:8080", "ab" * 32)
    again = RemoteTokens(tmp_path / "config")  # the next launch
    assert again.get("http://box.local:8080/") == "llmlb-admin-secret"
    assert again.pin("http://box.local:8080") == "ab" * 32
    assert again.get("http://other:8080") is None
    again.forget("http://box.local:8080")
    assert again.get("box.local:8080") is None


def test_a_fingerprint_is_taken_as_copied_or_refused() -> None:
    assert pinned("AB:" * 31 + "AB") == "ab" * 32
    assert pinned("") is None and pinned(None) is None
    with pytest.raises(BadServerUrl, match="64 hex digits"):
        pinned("abc")
