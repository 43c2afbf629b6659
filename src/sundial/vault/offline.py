"""Key operations for the command line (`sundial key ...`), on the database, server stopped.

They reuse the vault service, so an offline rotation is exactly as crash-safe as an online
one, and `verify` reads the canary without opening the vault (opening refuses a wrong key,
while `verify` must say *why* a key is wrong). Nothing here prints or logs a key, except
`pending_key`, which exists for the one moment an operator needs it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sundial.protocol import server_auth_token
from sundial.vault import store
from sundial.vault.bulk import Progress
from sundial.vault.crypto import SecretKey
from sundial.vault.errors import DecryptError, VaultError
from sundial.vault.keyring import CanaryCheck, KeySlot, check_canary_async, generate_key, open_pending_key
from sundial.vault.service import RotationOutcome, VaultService
from sundial.vault.startup import KeySource, configured_key


@dataclass(frozen=True)
class KeyReport:
    """What `sundial key verify` prints."""

    check: CanaryCheck
    source: KeySource
    candidate_label: str
    pending_fingerprint: str | None = None
    pending_epoch: int | None = None

    @property
    def ok(self) -> bool:
        return self.check.ok

    def lines(self) -> list[str]:
        out = [f"Key checked: {self.candidate_label} (fingerprint {self.check.key_fingerprint})"]
        if self.check.ok:
            out.append(f"OK: it opens the integrity canary (epoch {self.check.epoch}).")
        elif self.check.expected_fingerprint or self.check.status.value == "missing":
            out.append(self.check.message)
        if self.pending_fingerprint:
            out.append(f"A committed rotation to the key with fingerprint {self.pending_fingerprint} (epoch "
                       f"{self.pending_epoch}) is pending: start the conductor with that key, or with a mutable "
                       "key source and the previous key so it finishes the rotation.")
        return out


async def verify_key(vault: VaultService, candidate: SecretKey | None = None) -> KeyReport:
    """Check a key (the configured one by default) against the canary, without starting."""
    label = "the candidate key" if candidate is not None else f"the configured key ({vault.source.description})"
    key = candidate or configured_key(vault.config, vault.source)
    canary, marker = await store.read_key_state(vault.storage)
    check = await check_canary_async(canary, key)
    pending = _pending_slot(marker, key)
    return KeyReport(check, vault.source, label, pending.fingerprint if pending else None,
                     pending.epoch if pending else None)


def _pending_slot(marker: object, key: SecretKey) -> KeySlot | None:
    if marker is None:
        return None
    try:
        return open_pending_key(marker, key)
    except (DecryptError, ValueError):
        return None


async def pending_key(vault: VaultService) -> str | None:
    """The key a committed-but-unpersisted rotation moved to, opened with the configured key."""
    _canary, marker = await store.read_key_state(vault.storage)
    if marker is None:
        return None
    try:
        return open_pending_key(marker, configured_key(vault.config, vault.source)).key.reveal()
    except (DecryptError, ValueError):
        raise VaultError("auth", "The configured key does not open the pending-rotation marker") from None


async def rotate_offline(vault: VaultService, new: SecretKey | None, progress: Progress | None = None
                         ) -> RotationOutcome:
    """Open (proving the key), then rotate: to `new`, or to a generated key (mutable sources only)."""
    await vault.open()
    if new is None:
        if not vault.source.mutable:
            raise VaultError("admin", f"The key comes from {vault.source.description}: give the new key with "
                                      "--new-key-file, then point that setting at it.")
        new = generate_key()
    outcome = await vault.rotate(new, model="cli", progress=progress)
    await vault.close()
    return outcome


def satellite_token(server_id: str, key: SecretKey) -> str:
    """Offline recovery of an agent: lowercase hex SHA-256 of server id + key, no separator."""
    return server_auth_token(server_id, key.reveal())
