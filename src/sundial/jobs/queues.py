"""Per-group bookkeeping of the active jobs: who waits in each queue (in start order), how many run.

The job manager asks these questions on every accept, start, finish and abort. Answered by
scanning every active job, a burst of queued jobs cost quadratic time (10,000 queued and
aborted jobs took minutes). Here each job is filed under its queue group when it becomes active
and re-filed whenever its state changes, so each question costs O(1) or O(log n).

A queue group is also what the spec calls "similar" jobs: same ``workflow.node`` or ``event``,
same ``workflow.job``, same ``type`` (events-and-jobs.md sec. 4.2).

The index also keeps each server's load for the per-server job cap (sec. 6 step 5): the sum of
the `job` limit weights of the jobs `starting` or `active` on it. `starting` counts because a
job holds its server from the moment it is chosen, before its launch is written and sent.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sundial.jobs.build import first_enabled

RUNNING_STATES = ("active", "starting")
Order = tuple[int, float, int]  # (0 for priority jobs else 1, started, acceptance sequence)


def job_weight(job: Mapping[str, Any]) -> float:
    """The job's share of a server's cap: its enabled `job` limit's `weight`, default (and when
    not a positive number) 1."""
    limit = first_enabled(list(job.get("limits") or []), "job")
    weight = limit.get("weight") if limit else None
    return float(weight) if isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0 else 1.0


def group_key(job: Mapping[str, Any]) -> str:
    """The queue id: ``[workflow.node or event] + [workflow.job] + [type]`` joined with ``-``."""
    flow = job.get("workflow")
    flow = flow if isinstance(flow, dict) else {}
    parts = (flow.get("node") or job.get("event"), flow.get("job"), job.get("type"))
    return "-".join(str(part) for part in parts if part)


@dataclass
class _Entry:
    key: str
    event: str
    seq: int
    state: str = ""
    server: str = ""  # counted on this server while `active`
    loads: str = ""  # adds `weight` to this server's load while `starting` or `active`
    weight: float = 1.0


@dataclass
class _Group:
    members: int = 0  # tracked jobs in any state; the group is dropped when none is left
    running: int = 0
    queued: dict[str, Order] = field(default_factory=dict)  # job id -> its place in line
    line: list[tuple[Order, str]] = field(default_factory=list)  # heap; entries of gone jobs are skipped


class JobIndex:
    """Where every active job stands, kept current by `track`, `update` and `untrack`."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Entry] = {}
        self._groups: dict[str, _Group] = {}
        self._by_event: dict[str, dict[str, None]] = {}  # event id -> job ids, acceptance order
        self._on_server: Counter[str] = Counter()
        self._load: dict[str, float] = {}  # server id -> summed weights of its starting/active jobs
        self._waiting: dict[str, None] = {}  # groups with a non-empty queue
        self._renumber: set[str] = set()  # groups whose queue positions went stale
        self._seq = itertools.count()

    # -- changes -----------------------------------------------------------------------------
    def track(self, job: Mapping[str, Any]) -> None:
        """A job joined the active set (accepted, adopted or re-attached)."""
        job_id = str(job["id"])
        if job_id in self._jobs:
            self.update(job)
            return
        entry = _Entry(group_key(job), str(job.get("event") or ""), next(self._seq))
        self._jobs[job_id] = entry
        self._by_event.setdefault(entry.event, {})[job_id] = None
        self._groups.setdefault(entry.key, _Group()).members += 1
        self._enter(job_id, entry, job)

    def update(self, job: Mapping[str, Any]) -> None:
        """Re-file a job after its state may have changed; a job not tracked (yet) is ignored."""
        entry = self._jobs.get(str(job["id"]))
        if entry is not None and entry.state != job.get("state"):
            self._leave(str(job["id"]), entry)
            self._enter(str(job["id"]), entry, job)

    def refile(self, job: Mapping[str, Any]) -> None:
        """Re-file a job whose group (`type`, `workflow`), `priority` or `job` limit may have
        changed (`update_job`): it moves to its new group's queue at its new place."""
        job_id = str(job["id"])
        entry = self._jobs.get(job_id)
        if entry is None:
            return
        self._leave(job_id, entry)
        key = group_key(job)
        if key != entry.key:
            self._drop_member(entry.key)
            entry.key = key
            self._groups.setdefault(key, _Group()).members += 1
        self._enter(job_id, entry, job)
        if entry.state == "queued":
            self._renumber.add(key)  # its place in the (new) line may differ from the one it shows

    def untrack(self, job_id: str) -> None:
        """A job left the active set (finished, flushed or never stored)."""
        entry = self._jobs.pop(job_id, None)
        if entry is None:
            return
        self._leave(job_id, entry)
        ids = self._by_event.get(entry.event)
        if ids is not None:
            ids.pop(job_id, None)
            if not ids:
                del self._by_event[entry.event]
        self._drop_member(entry.key)

    def _drop_member(self, key: str) -> None:
        group = self._groups[key]
        group.members -= 1
        if group.members <= 0:
            del self._groups[key]

    def _enter(self, job_id: str, entry: _Entry, job: Mapping[str, Any]) -> None:
        entry.state = str(job.get("state") or "")
        group = self._groups[entry.key]
        if entry.state in RUNNING_STATES:
            group.running += 1
            entry.loads, entry.weight = str(job.get("server") or ""), job_weight(job)
            if entry.loads:
                self._load[entry.loads] = self._load.get(entry.loads, 0.0) + entry.weight
        if entry.state == "active":
            entry.server = str(job.get("server") or "")
            self._on_server[entry.server] += 1
        elif entry.state == "queued":
            order: Order = (0 if job.get("priority") else 1, float(job.get("started") or 0), entry.seq)
            group.queued[job_id] = order
            heapq.heappush(group.line, (order, job_id))
            self._waiting[entry.key] = None

    def _leave(self, job_id: str, entry: _Entry) -> None:
        group = self._groups[entry.key]
        if entry.state in RUNNING_STATES:
            group.running -= 1
        if entry.loads:
            left = self._load.get(entry.loads, 0.0) - entry.weight
            if left > 1e-9:
                self._load[entry.loads] = left
            else:
                self._load.pop(entry.loads, None)
            entry.loads = ""
        if entry.state == "active":
            self._on_server[entry.server] -= 1
            if self._on_server[entry.server] <= 0:
                del self._on_server[entry.server]
        elif entry.state == "queued":
            del group.queued[job_id]
            self._renumber.add(entry.key)
            if not group.queued:
                group.line.clear()
                self._waiting.pop(entry.key, None)
            elif len(group.line) > 2 * len(group.queued) + 64:  # mostly gone jobs: rebuild
                group.line = [(order, jid) for jid, order in group.queued.items()]
                heapq.heapify(group.line)
        entry.state = ""

    # -- questions ---------------------------------------------------------------------------
    def key_of(self, job_id: str) -> str | None:
        entry = self._jobs.get(job_id)
        return entry.key if entry else None

    def running(self, job: Mapping[str, Any]) -> int:
        """Similar jobs `active` or `starting` (the job limit counts these)."""
        group = self._groups.get(self.key_of(str(job.get("id"))) or group_key(job))
        return group.running if group else 0

    def queued(self, job: Mapping[str, Any]) -> int:
        """Similar jobs waiting in the queue."""
        group = self._groups.get(self.key_of(str(job.get("id"))) or group_key(job))
        return len(group.queued) if group else 0

    def next_queued(self, key: str) -> str | None:
        """The job id that leaves the group's queue next: priority first, then oldest `started`."""
        group = self._groups.get(key)
        if group is None:
            return None
        line = group.line
        while line and group.queued.get(line[0][1]) != line[0][0]:
            heapq.heappop(line)
        return line[0][1] if line else None

    def waiting_groups(self) -> list[str]:
        return list(self._waiting)

    def event_jobs(self, event_id: str) -> list[str]:
        return list(self._by_event.get(event_id, ()))

    def on_server(self, server_id: str) -> int:
        return self._on_server.get(server_id, 0)

    def load(self, server_id: str) -> float:
        """Summed `job` limit weights of the jobs starting or active on the server."""
        return self._load.get(server_id, 0.0)

    def renumber(self, active: Mapping[str, dict[str, Any]]) -> None:
        """Write 1-based `position`s in queue order for the groups whose queue lost a job.

        Done when someone looks rather than on every dequeue, so draining a long queue stays
        linear: each look costs one sort of the queues that changed since the last one.
        """
        for key in self._renumber:
            group = self._groups.get(key)
            for place, job_id in enumerate(sorted(group.queued, key=group.queued.__getitem__) if group else ()):
                if job_id in active:
                    active[job_id]["position"] = place + 1
        self._renumber.clear()
