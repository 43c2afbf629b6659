"""The vault's one error type.

Vault code raises `VaultError` with an xyOps-style `code` (`api` for bad parameters,
`secret` for decryption problems, `canary`/`auth` for key checks) so the API layer can
map it to the JSON envelope without knowing vault internals. Descriptions may name a
secret id, a variable name, a limit or a key fingerprint; they never carry a value or a key.
"""

from __future__ import annotations


class VaultError(Exception):
    """A refusal the caller can show to a user as `{code, description}`."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.description!r})"

    def __reduce__(self) -> tuple[type[VaultError], tuple[str, str]]:
        # Keep the (code, description) shape if an error is ever copied or pickled.
        return (VaultError, (self.code, self.description))


class DecryptError(VaultError):
    """A stored record could not be opened: wrong key, wrong id, tampering or bad format.

    These cases are deliberately not told apart in the message: GCM cannot distinguish a
    wrong key from a modified record, and guessing would mislead an operator.
    """

    def __init__(self, description: str) -> None:
        super().__init__("secret", description)

    def __reduce__(self) -> tuple[type[DecryptError], tuple[str]]:  # type: ignore[override]
        return (DecryptError, (self.description,))
