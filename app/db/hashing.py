"""How secrets (API keys, node tokens) are kept: only a hash of them is stored."""

from __future__ import annotations

import hashlib


def hash_secret(secret: str) -> str:
    """sha256 hex of a token or key; secrets are high-entropy, so no slow KDF is needed."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
