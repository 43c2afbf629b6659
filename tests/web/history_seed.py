"""A long job history for the UI tests: 10,000 finished jobs written straight into the conductor's SQLite file.

The pages must stay under 300 ms of server time with a history this long, and the job
history search must page in SQL; both are only tested honestly against a full table. Rows
go in through one transaction while the conductor runs (SQLite WAL; the conductor's
`busy_timeout` lets it wait out the few hundred milliseconds this takes).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sundial.jobs.store import row_values

SEED_JOBS = 10_000
SEED_EVENTS = ("seed_backup", "seed_report", "seed_cleanup", "seed_sync")
RESULTS: tuple[Any, ...] = (0, 0, 0, 0, 0, 0, "warning", 1, "abort", "critical")


def seed_job(n: int, now: float) -> dict[str, Any]:
    """The n-th seeded job: ids sort by time like real ones (`j` + zero-padded counter)."""
    code = RESULTS[n % len(RESULTS)]
    started = now - (SEED_JOBS - n) * 60
    tags = ["_success" if code == 0 else "_error"] + (["important"] if n % 7 == 0 else [])
    return {"id": f"j0seed{n:010d}", "event": SEED_EVENTS[n % len(SEED_EVENTS)], "category": "general",
            "plugin": "shellplug", "server": f"s{n % 3}", "groups": ["main"], "source": "scheduler",
            "state": "complete", "final": True, "complete": True, "code": code, "tags": tags,
            "description": "" if code == 0 else f"Seeded result {code}", "started": started,
            "completed": started + 5 + n % 50, "elapsed": 5 + n % 50, "event_title": f"Seed {n % 4}",
            "output": f"seeded job {n}\n", "log_file_size": 16}


def seed_history(home: Path, count: int = SEED_JOBS) -> None:
    now = time.time()
    rows = []
    for n in range(count):
        job = seed_job(n, now)
        values = row_values(job)
        values["doc"] = json.dumps(job)
        rows.append({"id": job["id"], **values})
    columns = list(rows[0])
    sql = f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    with sqlite3.connect(home / "data" / "sundial.db", timeout=30) as conn:
        conn.executemany(sql, rows)
