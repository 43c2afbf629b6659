"""xyOps-compatible password hashing: bcrypt over (password + per-user salt), cut to 72 bytes.

bcryptjs silently truncates its input at 72 bytes; Python's bcrypt refuses longer input,
so we truncate ourselves and imported xyOps users keep their passwords. Hashing is slow by
design, so callers run it in a thread (see `hash_password_async`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets

import bcrypt

BCRYPT_COST = 10


@functools.cache
def _dummy_hash() -> bytes:
    return bcrypt.hashpw(b"sundial-timing-flattener", bcrypt.gensalt(BCRYPT_COST))


def new_salt() -> str:
    return secrets.token_hex(32)


def _material(password: str, salt: str) -> bytes:
    return (password + salt).encode("utf-8")[:72]


def hash_password(password: str, salt: str, use_bcrypt: bool = True) -> str:
    if not use_bcrypt:
        return hashlib.sha256((password + salt).encode("utf-8")).hexdigest()
    hashed = bcrypt.hashpw(_material(password, salt), bcrypt.gensalt(BCRYPT_COST)).decode()
    return "$2a$" + hashed[4:]  # the prefix bcryptjs writes; same algorithm as $2b$


def verify_password(password: str, salt: str, stored: str) -> bool:
    """Any failure to compare counts as a mismatch."""
    try:
        if stored.startswith("$2"):
            return bcrypt.checkpw(_material(password, salt), stored.encode())
        digest = hashlib.sha256((password + salt).encode("utf-8")).hexdigest()
        return hmac.compare_digest(digest, stored)
    except (ValueError, TypeError):
        return False


def burn_compare(password: str) -> None:
    """Spend a compare's time for unknown users so login timing reveals nothing."""
    bcrypt.checkpw(password.encode("utf-8")[:72], _dummy_hash())


async def hash_password_async(password: str, salt: str, use_bcrypt: bool = True) -> str:
    return await asyncio.to_thread(hash_password, password, salt, use_bcrypt)


async def verify_password_async(password: str, salt: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, salt, stored)
