"""Deriving every stored record's key in the background after start-up (memory only).

Why: a restart empties the derived-key cache, so the first key rotation after it would pay one
old-key scrypt per record (~25 ms of CPU each) on top of the new-key one, nearly doubling its
time. One low-priority thread opens each record once instead, so the keyring's cache holds
its derivation when the rotation (or the first delivery) comes. A record only enters the cache
after its tag verified (`Keyring.open_record`), nothing is written anywhere, and the plaintext
is dropped at once. A rotation stops the warmer and derives whatever is left itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sundial.vault.errors import VaultError
from sundial.vault.keyring import Keyring

THREAD_NAME = "sundial-warmup"
# Linux nice value of the warming thread: request handling and rotations go first.
WARMUP_NICE = 10


def _lower_priority() -> None:
    """Lower only this thread's scheduling priority (Linux applies setpriority to one thread id)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WARMUP_NICE)


class RecordWarmer:
    """One pass over a snapshot of records on its own thread (never a shared pool's: the nice
    value stays with the thread); `stop` ends it after the derivation in progress."""

    def __init__(self, ring: Keyring, records: Iterable[tuple[str, Mapping[str, Any]]], *,
                 limit: int | None = None) -> None:
        self.ring = ring
        # At most half the cache by default, so warming never evicts the entries in use.
        cap = ring.cache.max_entries // 2 if limit is None else limit
        self._records = list(records)[:cap]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self.opened = 0

    def start(self) -> RecordWarmer:
        if self._records:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        _lower_priority()
        for secret_id, record in self._records:
            if self._stop.is_set():
                return
            with contextlib.suppress(VaultError):  # a record that will not open is reported when used
                if not self.ring.is_warm(record):
                    self.ring.open_record(record, secret_id)
                    self.opened += 1
