"""Password hashes stay compatible with xyOps (bcryptjs over password + salt, 72-byte cut)."""

from __future__ import annotations

import bcrypt

from sundial.auth.passwords import hash_password, verify_password


def test_hash_uses_bcryptjs_prefix_and_verifies() -> None:
    stored = hash_password("hunter2", "ab" * 32)
    assert stored.startswith("$2a$10$")
    assert verify_password("hunter2", "ab" * 32, stored)
    assert not verify_password("hunter3", "ab" * 32, stored)


def test_imported_xyops_hash_verifies() -> None:
    # what bcryptjs would have stored: bcrypt over the first 72 bytes of password + salt
    salt = "c0ffee" * 10
    imported = bcrypt.hashpw(("s3cret" + salt).encode()[:72], bcrypt.gensalt(10)).decode()
    imported = "$2a$" + imported[4:]
    assert verify_password("s3cret", salt, imported)


def test_long_passwords_are_cut_at_72_bytes_like_bcryptjs() -> None:
    long = "p" * 80
    stored = hash_password(long, "salt")
    assert verify_password("p" * 72 + "different-tail", "salt", stored)


def test_garbage_hash_is_a_mismatch_not_an_error() -> None:
    assert not verify_password("x", "y", "$2a$not-a-hash")
    assert not verify_password("x", "y", "")
