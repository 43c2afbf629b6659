"""Every table of the conductor, in one place.

Objects keep the full xyOps-shaped document in a JSON column (`doc`) so the API returns
exactly what xyOps returns and new fields need no migration; the other columns exist only
to be searched, sorted or joined on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()


class _Doc(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL.

    The same as `JSON().with_variant(JSONB(), "postgresql")`, except that the PostgreSQL
    dialect is imported only by a conductor that uses it (it costs ~2 MiB and ~50 ms).
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


Doc = _Doc()

# The 13 in-memory configuration lists of xyOps (`global/<name>`), one table each.
CONFIG_LISTS = ("api_keys", "groups", "plugins", "categories", "events", "channels", "web_hooks",
                "buckets", "secrets", "monitors", "alerts", "tags", "roles")


def _config_table(name: str) -> Table:
    return Table(
        name, metadata,
        Column("id", String(64), primary_key=True),
        Column("seq", Integer, nullable=False, index=True),
        Column("title", String(512), nullable=False, default=""),
        Column("modified", Float, nullable=False, default=0),
        Column("doc", Doc, nullable=False),
    )


config_tables: dict[str, Table] = {name: _config_table(name) for name in CONFIG_LISTS}

users = Table(
    "users", metadata,
    Column("norm", String(128), primary_key=True),
    Column("username", String(128), nullable=False),
    Column("created", Float, nullable=False),
    Column("doc", Doc, nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("id", String(128), primary_key=True),
    Column("username", String(128), nullable=False, index=True),
    Column("expires", Float, nullable=False, index=True),
    Column("doc", Doc, nullable=False),
)

security_log = Table(
    "security_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("norm", String(128), nullable=False, index=True),
    Column("epoch", Float, nullable=False),
    Column("doc", Doc, nullable=False),
)

activity = Table(
    "activity", metadata,
    Column("id", String(32), primary_key=True),
    Column("epoch", Float, nullable=False, index=True),
    Column("action", String(128), nullable=False, index=True),
    Column("username", String(128), nullable=True),
    Column("keywords", Text, nullable=False, default=""),
    Column("doc", Doc, nullable=False),
)

# Key/value records of the xyOps store (`global/state`, `secrets/<id>`, `hosts/<id>/data`, ...).
records = Table(
    "records", metadata,
    Column("key", String(512), primary_key=True),
    Column("value", Doc, nullable=False),
    Column("expires", Float, nullable=True),
    Index("ix_records_expires", "expires"),
)

# Jobs: active and finished in one table; `final` marks completed records (what search_jobs sees).
jobs = Table(
    "jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("event", String(64), nullable=False, default="", index=True),
    Column("category", String(64), nullable=False, default=""),
    Column("plugin", String(64), nullable=False, default=""),
    Column("server", String(64), nullable=False, default=""),
    Column("source", String(32), nullable=False, default=""),
    Column("code", String(128), nullable=False, default="0"),
    Column("tags", Text, nullable=False, default=" "),
    Column("groups", Text, nullable=False, default=" "),
    Column("state", String(32), nullable=False, default=""),
    Column("final", Integer, nullable=False, default=0, index=True),
    Column("started", Float, nullable=False, default=0),
    Column("completed", Float, nullable=False, default=0, index=True),
    Column("elapsed", Float, nullable=False, default=0),
    Column("doc", Doc, nullable=False),
)
# Search pages by (final, id) and per-event history: the two hottest job queries.
Index("ix_jobs_final_id", jobs.c.final, jobs.c.id)
Index("ix_jobs_event_final_id", jobs.c.event, jobs.c.final, jobs.c.id)

# Scheduler: one row per launched (event, scheduled second, trigger number), written in the same
# transaction as the job, so a slot can never be launched twice (see docs/scheduler.md).
schedule_slots = Table(
    "schedule_slots", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("slot", BigInteger, primary_key=True),
    Column("trigger_no", Integer, primary_key=True),
    Column("job_id", String(32), nullable=False, default=""),
    Column("created", Float, nullable=False),
    Index("ix_schedule_slots_slot", "slot"),
)

# Scheduler cursors: the loop's last fully processed minute (event_id "*"), and per event the
# frozen catch-up cursor and the every-Nth counter.
schedule_state = Table(
    "schedule_state", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("cursor", BigInteger, nullable=True),
    Column("nth", Integer, nullable=True),
    Column("modified", Float, nullable=False),
)

# Scheduler: launches waiting for their scheduler plugin's answer. Written with the minute's cursor
# advance and deleted with the answer's jobs and slots, so a crash while a plugin decides means the
# plugin is asked again (docs/scheduler.md "Scheduler plugins"). `doc`: the built job and STDIN item.
schedule_pending = Table(
    "schedule_pending", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("slot", BigInteger, primary_key=True),
    Column("trigger_no", Integer, primary_key=True),
    Column("plugin_id", String(64), nullable=False, default=""),
    Column("minute", BigInteger, nullable=False),
    Column("doc", Doc, nullable=False),
    Column("created", Float, nullable=False),
)

# Servers (satellites) ever seen: the record is the xyOps Server object; online state lives in
# the conductor's memory, the `online` column only mirrors it for search and other conductors.
servers = Table(
    "servers", metadata,
    Column("id", String(64), primary_key=True),
    Column("hostname", String(255), nullable=False, default="", index=True),
    Column("ip", String(64), nullable=False, default=""),
    Column("enabled", Integer, nullable=False, default=1),
    Column("online", Integer, nullable=False, default=0),
    Column("groups", Text, nullable=False, default=" "),
    Column("keywords", Text, nullable=False, default=""),
    Column("os_platform", String(64), nullable=False, default=""),
    Column("os_distro", String(128), nullable=False, default=""),
    Column("os_release", String(128), nullable=False, default=""),
    Column("os_arch", String(32), nullable=False, default=""),
    Column("cpu_brand", String(255), nullable=False, default=""),
    Column("cpu_virt", String(128), nullable=False, default=""),
    Column("cpu_cores", Integer, nullable=False, default=0),
    Column("created", Float, nullable=False, default=0),
    Column("modified", Float, nullable=False, default=0, index=True),
    Column("doc", Doc, nullable=False),
)
