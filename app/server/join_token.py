"""The cluster's join token: what a new node proves it knows before it may wait for approval.

Kept in the OS keyring (the vault) when there is one, never in the database; a value an older
llmlb left in the database wins once and moves to the vault.
"""

from __future__ import annotations

import secrets

from app.core.vault import Vault
from app.db.store import NodeStore

VAULT_NAME = "join_token"  # its name in the vault, and the legacy database setting's
PREFIX = "llmlb-join-"


class JoinToken:
    """The current join token, loaded once and rotated on request."""

    def __init__(self, store: NodeStore, vault: Vault | None = None) -> None:
        self.store = store
        # Without a vault (tests building a registry alone) it stays in memory and the store.
        self.vault = vault
        self.value = ""

    async def load(self, configured: str | None) -> None:
        """Settle the token: the configured one (LLMLB_JOIN_TOKEN), else the kept one, else new."""
        legacy = await self.store.get_setting(VAULT_NAME)
        stored = legacy or (self.vault.get(VAULT_NAME) if self.vault else None)
        self.value = configured or stored or _fresh()
        if self.value != stored or legacy:
            await self._keep()

    async def rotate(self) -> str:
        """A new join token (nodes already registered keep working)."""
        self.value = _fresh()
        await self._keep()
        return self.value

    async def _keep(self) -> None:
        if self.vault is not None:
            self.vault.set(VAULT_NAME, self.value)
            await self.store.set_setting(VAULT_NAME, "")  # out of the database
        else:
            await self.store.set_setting(VAULT_NAME, self.value)


def _fresh() -> str:
    return PREFIX + secrets.token_urlsafe(24)
