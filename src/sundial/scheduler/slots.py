"""Scheduler persistence: claimed launch slots, the loop cursor and per-event state.

Every function works inside a connection or transaction the caller owns: the service
claims a minute's slots, inserts its jobs and advances the cursor in one transaction, so
either all of it is durable or none of it is (docs/scheduler.md "Exactly once").
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, select

from sundial.scheduler.planner import StateRow
from sundial.storage.engine import AsyncConnection, upsert_insert
from sundial.storage.schema import schedule_pending, schedule_slots, schedule_state

LOOP_KEY = "*"  # the loop cursor's row; no event id can be "*"
SlotKey = tuple[str, int, int]  # (event id, nominal second, trigger number)
KEEP_SLOTS_SECONDS = 86400  # slots older than the cursor by this much are pruned (kept for audits)


@dataclass(slots=True)
class PendingRow:
    """A launch waiting for its scheduler plugin, as stored in ``schedule_pending``."""

    key: SlotKey
    plugin_id: str
    minute: int
    doc: dict[str, Any]  # {"job": built job, "item": STDIN item without its job}


async def load_state(conn: AsyncConnection) -> tuple[int | None, dict[str, StateRow]]:
    """The loop cursor (None before the first tick) and every event's stored state."""
    rows = (await conn.execute(select(schedule_state.c.event_id, schedule_state.c.cursor,
                                      schedule_state.c.nth))).all()
    loop = next((int(r.cursor) for r in rows if r.event_id == LOOP_KEY and r.cursor is not None), None)
    events = {r.event_id: StateRow(None if r.cursor is None else int(r.cursor), r.nth)
              for r in rows if r.event_id != LOOP_KEY}
    return loop, events


async def taken_slots(conn: AsyncConnection, keys: Sequence[SlotKey]) -> set[SlotKey]:
    """Which of these slots are already claimed (by an earlier run of the same minute)."""
    if not keys:
        return set()
    low, high = min(k[1] for k in keys), max(k[1] for k in keys)
    in_window = and_(schedule_slots.c.slot >= low, schedule_slots.c.slot <= high)
    if (await conn.execute(select(schedule_slots.c.slot).where(in_window).limit(1))).first() is None:
        return set()  # the usual case, a fresh minute: one index probe
    found: set[SlotKey] = set()
    event_ids = sorted({k[0] for k in keys})
    for start in range(0, len(event_ids), 500):
        rows = await conn.execute(select(schedule_slots.c.event_id, schedule_slots.c.slot, schedule_slots.c.trigger_no)
                                  .where(in_window, schedule_slots.c.event_id.in_(event_ids[start:start + 500])))
        found.update((r.event_id, int(r.slot), int(r.trigger_no)) for r in rows)
    return found & set(keys)


async def last_claimed_after(conn: AsyncConnection, cursor: int) -> int | None:
    """The newest slot claimed past the cursor: a minute a crashed or paused run had begun."""
    found = (await conn.execute(select(func.max(schedule_slots.c.slot))
                                .where(schedule_slots.c.slot > cursor + 59))).scalar()
    return None if found is None else int(found) // 60 * 60


async def claim_slots(conn: AsyncConnection, claims: Iterable[tuple[SlotKey, str]]) -> None:
    """Insert slot rows; a duplicate raises IntegrityError and the whole transaction rolls back."""
    now = time.time()
    rows = [{"event_id": k[0], "slot": k[1], "trigger_no": k[2], "job_id": job_id, "created": now}
            for k, job_id in claims]
    if rows:
        await conn.execute(schedule_slots.insert(), rows)


def _upsert(is_sqlite: bool) -> Any:
    maker = upsert_insert(is_sqlite)
    stmt = maker(schedule_state)
    return stmt.on_conflict_do_update(index_elements=[schedule_state.c.event_id], set_={
        "cursor": stmt.excluded.cursor, "nth": stmt.excluded.nth, "modified": stmt.excluded.modified})


async def write_state(conn: AsyncConnection, is_sqlite: bool, loop_cursor: int,
                      changes: Mapping[str, StateRow | None]) -> None:
    """Advance the loop cursor and apply per-event changes (None deletes the event's row)."""
    now = time.time()
    rows = [{"event_id": LOOP_KEY, "cursor": loop_cursor, "nth": None, "modified": now}]
    rows += [{"event_id": k, "cursor": v.cursor, "nth": v.nth, "modified": now}
             for k, v in changes.items() if v is not None]
    await conn.execute(_upsert(is_sqlite), rows)
    gone = [k for k, v in changes.items() if v is None]
    for start in range(0, len(gone), 500):
        await conn.execute(delete(schedule_state).where(schedule_state.c.event_id.in_(gone[start:start + 500])))


async def prune_slots(conn: AsyncConnection, loop_cursor: int) -> None:
    """Slots at or before the cursor are never evaluated again; keep a day of them for audits."""
    await conn.execute(delete(schedule_slots).where(schedule_slots.c.slot < loop_cursor - KEEP_SLOTS_SECONDS))


async def slots_of(conn: AsyncConnection, event_id: str | None = None,
                   since: int = 0) -> list[dict[str, Any]]:
    """Claimed slots (oldest first), for the status verb and tests."""
    query = select(schedule_slots).where(schedule_slots.c.slot >= since)
    if event_id is not None:
        query = query.where(schedule_slots.c.event_id == event_id)
    rows = await conn.execute(query.order_by(schedule_slots.c.slot, schedule_slots.c.event_id))
    return [dict(row._mapping) for row in rows]


async def event_row(conn: AsyncConnection, event_id: str) -> StateRow:
    """One event's stored state (empty when it has none)."""
    row = (await conn.execute(select(schedule_state.c.cursor, schedule_state.c.nth)
                              .where(schedule_state.c.event_id == event_id))).first()
    return StateRow() if row is None else StateRow(None if row.cursor is None else int(row.cursor), row.nth)


async def put_event_row(conn: AsyncConnection, is_sqlite: bool, event_id: str, row: StateRow) -> None:
    """Store (or, when empty, delete) one event's state; the loop cursor is left alone."""
    if row.empty:
        await conn.execute(delete(schedule_state).where(schedule_state.c.event_id == event_id))
        return
    await conn.execute(_upsert(is_sqlite), [{"event_id": event_id, "cursor": row.cursor, "nth": row.nth,
                                             "modified": time.time()}])


async def pending_keys(conn: AsyncConnection, keys: Sequence[SlotKey]) -> set[SlotKey]:
    """Which of these launches already wait for their plugin (a cursor moved back over them)."""
    if not keys:
        return set()
    found: set[SlotKey] = set()
    event_ids = sorted({k[0] for k in keys})
    for start in range(0, len(event_ids), 500):
        rows = await conn.execute(select(schedule_pending.c.event_id, schedule_pending.c.slot,
                                         schedule_pending.c.trigger_no)
                                  .where(schedule_pending.c.event_id.in_(event_ids[start:start + 500])))
        found.update((r.event_id, int(r.slot), int(r.trigger_no)) for r in rows)
    return found & set(keys)


async def add_pending(conn: AsyncConnection, rows: Iterable[PendingRow]) -> None:
    """Store launches that wait for their plugin, in the transaction that moves the cursor."""
    now = time.time()
    values = [{"event_id": r.key[0], "slot": r.key[1], "trigger_no": r.key[2], "plugin_id": r.plugin_id,
               "minute": r.minute, "doc": r.doc, "created": now} for r in rows]
    if values:
        await conn.execute(schedule_pending.insert(), values)


async def load_pending(conn: AsyncConnection) -> list[PendingRow]:
    """Every waiting launch, oldest minute first."""
    rows = await conn.execute(select(schedule_pending).order_by(schedule_pending.c.minute, schedule_pending.c.slot,
                                                                schedule_pending.c.event_id))
    return [PendingRow((r.event_id, int(r.slot), int(r.trigger_no)), r.plugin_id, int(r.minute), r.doc)
            for r in rows]


async def drop_pending(conn: AsyncConnection, keys: Iterable[SlotKey]) -> set[SlotKey]:
    """Forget answered launches; returns the keys that were still waiting (the others were
    answered by another run, e.g. an old primary, and must not launch again)."""
    removed: set[SlotKey] = set()
    for key in keys:
        event_id, slot, trigger_no = key
        result = await conn.execute(delete(schedule_pending).where(
            schedule_pending.c.event_id == event_id, schedule_pending.c.slot == slot,
            schedule_pending.c.trigger_no == trigger_no))
        if result.rowcount:
            removed.add(key)
    return removed
