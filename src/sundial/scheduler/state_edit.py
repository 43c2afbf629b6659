"""Checking an ``update_state`` object ("time machine") before anything is saved.

``create_event``/``update_event`` may carry ``update_state {cursor, nth}`` (spec:
triggers-and-scheduler §3.3, events-and-jobs "per-event state record"). It is never stored on
the event; it edits the scheduler's per-event row. The scheduler keeps exactly two values per
event, so only those two keys are accepted: a typo must not be silently dropped.

* ``cursor``: epoch seconds (floored to the minute) of the last minute counted as processed.
  A catch-up event replays every minute after it; ``null`` returns the event to the
  scheduler's own cursor.
* ``nth``: the every-Nth countdown; ``0`` or ``null`` restarts the pattern (next hit launches).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sundial.scheduler.planner import StateRow

KEYS = ("cursor", "nth")
MAX_EPOCH = 253402300799  # 9999-12-31: later than any schedule can reach


class StateEditError(ValueError):
    """A refused ``update_state``; the message is shown to the caller as is."""


@dataclass(frozen=True, slots=True)
class StateEdit:
    """The keys given (others stay as stored); a value of None clears that key."""

    values: Mapping[str, int | None]

    def apply(self, row: StateRow) -> StateRow:
        cursor = self.values.get("cursor", row.cursor)
        nth = self.values.get("nth", row.nth)
        return StateRow(cursor, nth or None)


def _whole(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_state_edit(raw: Any) -> StateEdit:
    """Check ``update_state``; StateEditError names the first bad key."""
    if not isinstance(raw, Mapping):
        raise StateEditError("Malformed parameter: update_state (must be object)")
    unknown = [key for key in raw if key not in KEYS]
    if unknown:
        raise StateEditError(f"Unknown event state key: {unknown[0]} (only cursor and nth can be set)")
    values: dict[str, int | None] = {}
    if "cursor" in raw:
        cursor = raw["cursor"]
        if cursor is not None and not (_whole(cursor) and 0 < cursor <= MAX_EPOCH):
            raise StateEditError("Malformed parameter: update_state.cursor (must be an epoch in seconds)")
        values["cursor"] = None if cursor is None else int(cursor // 60 * 60)
    if "nth" in raw:
        nth = raw["nth"]
        if nth is not None and not (_whole(nth) and nth >= 0 and float(nth).is_integer()):
            raise StateEditError("Malformed parameter: update_state.nth (must be a whole number, 0 or more)")
        values["nth"] = None if nth is None else int(nth)
    return StateEdit(values)
