"""Object IDs in the xyOps shape: prefix + base36 time + base36 counter + random padding.

They sort by creation time, which the activity and job indexes rely on for `_id` order.
"""

from __future__ import annotations

import itertools
import secrets
import string
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
    # One draw for the whole padding (uniform over its 36**size values), not one per character:
    # each draw is a getrandom() system call, and jobs mint several ids on their hot path.
    pad = base36(secrets.randbelow(36**size)).rjust(size, "0") if size else ""
    return head + pad


def random_hex(nbytes: int = 32) -> str:
    return secrets.token_hex(nbytes)
