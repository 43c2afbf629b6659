"""The secrets vault: xyOps-compatible secret encryption, the key manager, validation and delivery.

Phase 1 is storage-independent: `crypto` (record format), `keyring` (keys, rotation state,
integrity canary), `validation`, `runtime` (delivery order, audit lines, macros) and `bulk`
(re-encryption on a thread pool). Storage and API wiring live elsewhere and call these.
"""

from sundial.vault.crypto import DerivedKeyCache, FreshKeyPool, SealedBlob, SecretKey
from sundial.vault.errors import DecryptError, VaultError
from sundial.vault.keyring import CanaryCheck, CanaryStatus, Keyring, KeySlot, check_canary, create_canary

__all__ = [
    "CanaryCheck",
    "CanaryStatus",
    "DecryptError",
    "DerivedKeyCache",
    "FreshKeyPool",
    "KeySlot",
    "Keyring",
    "SealedBlob",
    "SecretKey",
    "VaultError",
    "check_canary",
    "create_canary",
]
