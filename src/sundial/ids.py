"""Object IDs in the xyOps shape: prefix + base36 time + base36 counter + random padding.

They sort by creation time, which the activity and job indexes rely on for `_id` order.
"""

from __future__ import annotations

import itertools
import os
import secrets
import string
import threading
import time

_ALPHABET = string.digits + string.ascii_lowercase
_counter = itertools.count()
ID_LENGTH = 16


def base36(number: int) -> str:
    if number == 0:
        return "0"
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def generate_id(prefix: str) -> str:
    """A 16-character time-sortable ID such as `ca` + time + counter + padding."""
    stamp = base36(int(time.time() * 1000))
    count = base36(next(_counter) % 1296).rjust(2, "0")
    head = prefix + stamp + count
    size = max(0, ID_LENGTH - len(head))
    pad = base36(_random_word() % 36**size).rjust(size, "0") if size else ""
    return head + pad


_pool = bytearray()
_pool_lock = threading.Lock()
os.register_at_fork(after_in_child=_pool.clear)  # a forked child must not replay its parent's bytes


def _random_word() -> int:
    """64 random bits from the OS, taken from a 4 KiB refill: ids are minted several times per job,
    and a getrandom() call each time meant a GIL hand-off each time on a busy conductor. (The modulo
    bias over at most 36**6 values is under 2**-33.)"""
    with _pool_lock:
        if len(_pool) < 8:
            _pool.extend(secrets.token_bytes(4096))
        word = int.from_bytes(_pool[:8], "big")
        del _pool[:8]
    return word


def random_hex(nbytes: int = 32) -> str:
    return secrets.token_hex(nbytes)
