"""Which key is in force at start-up, decided from the configured key, the canary and the marker.

Pure decisions (no storage, no config writes) so every crash state of a rotation can be
tested directly. The states, and what start-up does with each:

- no canary: first start, or a store migrated from xyOps -> prove the key on a stored secret
  (all of them with `strict`), then create the canary;
- the canary opens with the key -> normal start; a leftover marker is deleted;
- the canary does not open, but the pending marker opens with the key and names the
  canary's key -> a rotation committed and was not activated: with a mutable key source,
  finish it (persist the new key); with an env/file source, refuse and say what to set;
- otherwise -> wrong key: refuse, naming the expected key fingerprint.

A crash before the rotation's commit leaves the first rows; nothing needs rolling back,
because the commit is one transaction with the records, the new canary and the marker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sundial.config import Config, ConfigError
from sundial.vault.crypto import SecretKey, decrypt_fields
from sundial.vault.errors import DecryptError
from sundial.vault.keyring import INTEGRITY_FAILED, CanaryStatus, KeySlot, check_canary, open_pending_key


class KeyCheckFailed(ConfigError):
    """The configured secret key cannot be proven right for this store: refuse to start.

    A ConfigError so the CLI prints it and exits 1 like any other bad configuration.
    """


@dataclass(frozen=True)
class KeySource:
    """Where the configured key came from, and whether Sundial may rewrite it."""

    description: str
    mutable: bool
    env_var: str | None = None

    @property
    def where_to_persist(self) -> str:
        """Operator-facing: the place a rotated key must be written."""
        if self.mutable:
            return "the overrides file"
        if self.env_var and self.env_var.endswith("_FILE"):
            path = self.description.partition(" (")[2].rstrip(")")
            return f"the key file named by {self.env_var}" + (f" ({path})" if path else "")
        if self.env_var:
            return f"the environment variable {self.env_var}"
        return f"the {self.description} setting"


def key_source(config: Config) -> KeySource:
    """Env and `_FILE` variables and command-line flags are immutable; config files are not."""
    description = config.source_of("secret_key")
    if description.startswith("environment "):
        return KeySource(description, mutable=False, env_var=description.split()[1])
    mutable = description.startswith(("overrides file", "config file", "built-in"))
    return KeySource(description, mutable=mutable)


def configured_key(config: Config, source: KeySource | None = None) -> SecretKey:
    """The key as configured; from a plain env variable, its raw text.

    Config parsing turns all-digit env values into numbers, which would change a key with
    leading zeros; the raw variable is the key.
    """
    source = source or key_source(config)
    raw = os.environ.get(source.env_var) if source.env_var and not source.env_var.endswith("_FILE") else None
    text = raw if raw else config.get("secret_key")
    if text is None or text == "":
        raise KeyCheckFailed("No secret_key is configured (set it in conf/config.json, overrides.json, "
                             "SUNDIAL_secret_key or SUNDIAL_SECRET_KEY_FILE)")
    return SecretKey(str(text))


def missing_key_refusal(canary: Any, records: Mapping[str, Any]) -> KeyCheckFailed | None:
    """No key is configured: None when the store holds nothing encrypted (generate one), else the refusal.

    Generating a key for a store that already holds encrypted data would lock that data away
    (and, saved in overrides.json, would shadow the right key given later in the environment).
    """
    if canary is None and not records:
        return None
    if isinstance(canary, Mapping):
        fingerprint = canary.get("fingerprint") if isinstance(canary.get("fingerprint"), str) else "unknown"
        expected = f"the key with fingerprint {fingerprint} (epoch {canary.get('epoch')})"
    else:
        expected = f"the key that wrote its {len(records)} stored secret(s)"
    return KeyCheckFailed(
        f"No secret_key is configured, but this store already holds data encrypted with a key: it "
        f"expects {expected}. Supply that key as \"secret_key\" in conf/config.json or conf/overrides.json, "
        f"or in the environment variable SUNDIAL_secret_key, or in a file named by SUNDIAL_SECRET_KEY_FILE, "
        f"then start again (`sundial key verify --key-file FILE` checks a candidate). No new key was "
        f"generated, so nothing was changed.")


def shadowed_env_hint(config: Config, source: KeySource) -> str:
    """The overrides file beats the environment: say so when both hold a key and the file's is wrong."""
    if not config.secret_key_from_env or not source.description.startswith("overrides file"):
        return ""
    return (f" A key is also set in the environment, but the secret_key in {config.overrides_file} takes "
            f"precedence: remove it from that file to use the environment's key.")


@dataclass
class StartDecision:
    """What start-up does: the keys to load and the store changes to make."""

    current: KeySlot
    previous: KeySlot | None = None
    create_canary: bool = False
    persist_key: bool = False       # finish a committed rotation: write `current` to the overrides file
    delete_marker: bool = False
    notes: list[str] = field(default_factory=list)


def _epoch_hint(records: Mapping[str, Any]) -> int:
    epochs = [rec.get("kep") for rec in records.values() if isinstance(rec, Mapping)]
    return max([e for e in epochs if isinstance(e, int) and not isinstance(e, bool)] or [1])


def _prove_on_records(key: SecretKey, records: Mapping[str, Any], strict: bool) -> None:
    """Migration from xyOps (secrets, no canary): the key must open stored secrets."""
    for secret_id, record in (records.items() if strict else list(records.items())[:1]):
        try:
            decrypt_fields(record, secret_id, key)
        except DecryptError:
            raise KeyCheckFailed(
                f"{INTEGRITY_FAILED}: the configured secret key (fingerprint {key.fingerprint}) does not "
                f"open the stored secret {secret_id}; this store was written with another key") from None


def _first_start(key: SecretKey, records: Mapping[str, Any], strict: bool, marker: Any) -> StartDecision:
    _prove_on_records(key, records, strict)
    note = (f"Created the key integrity canary (fingerprint {key.fingerprint})" if not records else
            f"Verified the secret key on {len(records) if strict else 1} stored secret(s) and created "
            f"the key integrity canary (fingerprint {key.fingerprint})")
    return StartDecision(KeySlot(key, _epoch_hint(records)), create_canary=True,
                         delete_marker=marker is not None, notes=[note])


def _committed_rotation(key: SecretKey, canary: Any, marker: Any, source: KeySource) -> StartDecision | None:
    """The marker path: `key` is the pre-rotation key and the marker names the canary's key."""
    if marker is None:
        return None
    try:
        pending = open_pending_key(marker, key)
    except (DecryptError, ValueError):
        return None
    if not check_canary(canary, pending.key).ok:
        return None
    if not source.mutable:
        raise KeyCheckFailed(
            f"{INTEGRITY_FAILED}: a key rotation to the key with fingerprint {pending.fingerprint} "
            f"(epoch {pending.epoch}) was committed, but {source.description} still holds the previous key "
            f"(fingerprint {key.fingerprint}). Set {source.where_to_persist} to the rotated key and start "
            f"again; `sundial key show-pending` prints it.")
    previous = KeySlot(key, max(1, pending.epoch - 1))
    return StartDecision(pending, previous=previous, persist_key=True, delete_marker=True,
                         notes=[f"Finished an interrupted key rotation: the key with fingerprint "
                                f"{pending.fingerprint} (epoch {pending.epoch}) is now in force"])


def decide(key: SecretKey, canary: Any, marker: Any, records: Mapping[str, Any], source: KeySource, *,
           strict: bool = False) -> StartDecision:
    """Blocking (up to a few scrypt derivations): call it in a thread."""
    if canary is None:
        return _first_start(key, records, strict, marker)
    check = check_canary(canary, key)
    if check.ok:
        return StartDecision(KeySlot(key, check.epoch or 1), delete_marker=marker is not None)
    if check.status is CanaryStatus.WRONG_KEY:
        resumed = _committed_rotation(key, canary, marker, source)
        if resumed is not None:
            return resumed
    raise KeyCheckFailed(f"{check.message}. The key came from {source.description}.")

