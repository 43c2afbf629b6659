"""Start-up key decisions: every state a rotation can leave behind, decided deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sundial.config import load_config
from sundial.vault.crypto import SecretKey, encrypt_fields
from sundial.vault.keyring import INTEGRITY_FAILED, KeySlot, create_canary, seal_pending_key
from sundial.vault.startup import KeyCheckFailed, KeySource, configured_key, decide, key_source, missing_key_refusal

OLD = SecretKey("UNIT_TEST")
NEW = SecretKey("56" * 32)
FIELDS = [{"name": "V", "value": "synthetic"}]
MUTABLE = KeySource("overrides file /x/conf/overrides.json", mutable=True)
FROM_ENV = KeySource("environment SUNDIAL_secret_key", mutable=False, env_var="SUNDIAL_secret_key")


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    """The store right after a rotation's commit: canary of NEW at epoch 2, marker sealed by OLD."""
    slot = KeySlot(NEW, 2)
    return {"canary": create_canary(NEW, epoch=2), "marker": seal_pending_key(slot, OLD),
            "records": {"z1": encrypt_fields(FIELDS, "z1", NEW, epoch=2)}}


def test_first_start_creates_the_canary() -> None:
    decision = decide(OLD, None, None, {}, MUTABLE)
    assert decision.create_canary and decision.current == KeySlot(OLD, 1) and not decision.persist_key


def test_migration_from_xyops_proves_the_key_on_a_stored_secret() -> None:
    records = {"zx": encrypt_fields(FIELDS, "zx", OLD)}
    assert decide(OLD, None, None, records, MUTABLE).create_canary
    with pytest.raises(KeyCheckFailed) as caught:
        decide(NEW, None, None, records, MUTABLE)
    assert "zx" in str(caught.value) and NEW.fingerprint in str(caught.value)


def test_strict_migration_checks_every_secret() -> None:
    records = {"za": encrypt_fields(FIELDS, "za", OLD), "zb": encrypt_fields(FIELDS, "zb", NEW)}
    decide(OLD, None, None, records, MUTABLE)  # the first one opens
    with pytest.raises(KeyCheckFailed, match="zb"):
        decide(OLD, None, None, records, MUTABLE, strict=True)


def test_normal_start_and_leftover_marker(committed: dict[str, Any]) -> None:
    decision = decide(NEW, committed["canary"], committed["marker"], committed["records"], FROM_ENV)
    assert decision.current == KeySlot(NEW, 2) and decision.delete_marker and not decision.persist_key


def test_committed_rotation_is_finished_with_a_mutable_source(committed: dict[str, Any]) -> None:
    decision = decide(OLD, committed["canary"], committed["marker"], committed["records"], MUTABLE)
    assert decision.current == KeySlot(NEW, 2) and decision.previous == KeySlot(OLD, 1)
    assert decision.persist_key and decision.delete_marker


def test_committed_rotation_with_an_env_key_refuses_and_says_what_to_set(committed: dict[str, Any],
                                                                         no_leak: Any) -> None:
    with pytest.raises(KeyCheckFailed) as caught:
        decide(OLD, committed["canary"], committed["marker"], committed["records"], FROM_ENV)
    text = str(caught.value)
    assert INTEGRITY_FAILED in text and NEW.fingerprint in text and "SUNDIAL_secret_key" in text
    no_leak(text, NEW.reveal(), "the start-up error")


def test_wrong_key_names_the_expected_fingerprint(committed: dict[str, Any]) -> None:
    stranger = SecretKey("not-the-key")
    for marker in (None, committed["marker"]):
        with pytest.raises(KeyCheckFailed) as caught:
            decide(stranger, committed["canary"], marker, committed["records"], MUTABLE)
        assert NEW.fingerprint in str(caught.value) and "overrides file" in str(caught.value)


def test_damaged_canary_refuses() -> None:
    with pytest.raises(KeyCheckFailed, match="damaged"):
        decide(OLD, {"v": 1, "epoch": 1, "enc": {"v": 1}}, None, {}, MUTABLE)


def test_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "env-key-" + "7" * 20
    monkeypatch.setenv("SUNDIAL_secret_key", text)
    config = load_config(tmp_path, environ={"SUNDIAL_secret_key": text})
    source = key_source(config)
    assert not source.mutable and source.env_var == "SUNDIAL_secret_key"
    assert configured_key(config, source).reveal() == text
    assert "SUNDIAL_secret_key" in source.where_to_persist
    key_file = tmp_path / "key.txt"
    key_file.write_text("file-key\n")
    from_file = load_config(tmp_path, environ={"SUNDIAL_SECRET_KEY_FILE": str(key_file)})
    assert key_source(from_file).where_to_persist.startswith("the key file named by SUNDIAL_SECRET_KEY_FILE")
    assert configured_key(from_file).reveal() == "file-key"
    plain = load_config(tmp_path, environ={})
    plain.set_overrides({"secret_key": "from-overrides"})
    assert key_source(plain).mutable and configured_key(plain).reveal() == "from-overrides"


def test_no_configured_key_generates_one_only_for_a_store_with_nothing_encrypted(committed: dict[str, Any]) -> None:
    assert missing_key_refusal(None, {}) is None
    refusal = missing_key_refusal(committed["canary"], committed["records"])
    assert refusal is not None and NEW.fingerprint in str(refusal) and "(epoch 2)" in str(refusal)
    assert "SUNDIAL_SECRET_KEY_FILE" in str(refusal) and "No new key was generated" in str(refusal)
    from_xyops = missing_key_refusal(None, {"zx": encrypt_fields(FIELDS, "zx", OLD)})
    assert from_xyops is not None and "1 stored secret(s)" in str(from_xyops)
