"""The job manager: every active job, moved along by events, never by a polling tick.

A job advances when something happens to it: accepted, a server frees up, the satellite
reports, a timer fires, an abort arrives. Durable writes go through the group-committing
JobStore; a job is stored before `run_event` answers and before its launch is sent, so a
crash can neither lose an accepted job nor start one twice.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sundial.jobs.build import (
    DETAIL_KEYS,
    LaunchError,
    chain_tags,
    completion_conditions,
    final_tags,
    first_enabled,
    merge_agent_update,
    meta_line,
    normalize_code,
    retry_copy,
    split_details,
)
from sundial.jobs.daystats import DayCounters, local_day, stat_names
from sundial.jobs.logs import JobLogs
from sundial.jobs.queues import JobIndex, job_weight
from sundial.jobs.select import candidates, pick, server_cap, with_room
from sundial.jobs.stageclock import StageClock
from sundial.jobs.store import JobStore
from sundial.jobs.wording import bytes_text, seconds_text
from sundial.live.bus import LiveBus
from sundial.live.feeds import JobFeed
from sundial.logs import Logger

DELAY_STATES = ("start_delay", "retry_delay")
WAITING_STATES = ("queued", "ready", *DELAY_STATES)
SWEEP_SECONDS = 5.0


def _no_group(group_id: str) -> dict[str, Any] | None:
    return None


class Fleet(Protocol):
    """What the job manager needs from the satellite hub."""

    def online_servers(self) -> list[dict[str, Any]]: ...

    def send(self, server_id: str, cmd: str, data: dict[str, Any]) -> bool: ...


class NoFleet:
    def online_servers(self) -> list[dict[str, Any]]:
        return []

    def send(self, server_id: str, cmd: str, data: dict[str, Any]) -> bool:
        return False


Hook = Callable[[dict[str, Any], list[str]], Awaitable[None]]
# (event id, shallow changes or None, delete?, actor): apply what a job asked for its event.
EventChanger = Callable[[str, dict[str, Any] | None, bool, str], Awaitable[None]]
# (server id, data): merge a job's `serverData` into the server's user data.
ServerDataSink = Callable[[str, dict[str, Any]], Awaitable[None]]
# (live job, conditions about to fire) -> True when a suspend action now holds the job. The gate
# (sundial.actions.suspend) sets `suspended` on the job itself and sends the notifications.
SuspendGate = Callable[[dict[str, Any], list[str]], Awaitable[bool]]


class JobManager:
    def __init__(self, store: JobStore, logs: JobLogs, log: Logger, *, dead_job_timeout: float = 120,
                 inline_log_limit: int = 1 << 20, known_tags: Callable[[], set[str]] = set,
                 ebrake_per_min: int = 10000, group_of: Callable[[str], dict[str, Any] | None] = _no_group) -> None:
        self.store = store
        self.logs = logs
        self.log = log
        self.dead_job_timeout = dead_job_timeout
        self.inline_log_limit = inline_log_limit
        self.known_tags = known_tags
        self.group_of = group_of  # server group records, for their `max_jobs_per_server`
        self.ebrake_per_min = ebrake_per_min
        self.fleet: Fleet = NoFleet()
        self.secrets_for: Callable[[dict[str, Any]], Awaitable[dict[str, str]]] = _no_secrets
        self.condition_hooks: list[Hook] = []
        # The launch checks a retry passes again (Launcher.check_retry); raises LaunchError. None: no retries.
        self.retry_gate: Callable[[dict[str, Any]], None] | None = None
        self.event_changer: EventChanger | None = None
        self.server_data_sink: ServerDataSink | None = None
        self.suspend_gate: SuspendGate | None = None
        self.daily: DayCounters | None = None  # today's job stats, read by `day` limits
        self.live = JobFeed(LiveBus())  # live channel publisher (app.py hands it the shared bus)
        self.active: dict[str, dict[str, Any]] = {}
        self.index = JobIndex()  # queues and running counts per group; every state change goes through it
        self.details: dict[str, dict[str, Any]] = {}
        self._robin: dict[str, int] = {}
        self._timers: dict[str, list[asyncio.TimerHandle]] = {}
        self._finishing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._minute: tuple[int, int] = (0, 0)
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._clock = StageClock()

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.daily is not None:
            await self.daily.load()
        self.store.start()
        await self._reattach()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        for handles in self._timers.values():
            for handle in handles:
                handle.cancel()
        await self.store.stop()
        if self.daily is not None:
            await self.daily.close()

    async def _reattach(self) -> None:
        """After a restart: running jobs wait for their satellite; unsent ones continue."""
        for job in await self.store.unfinished():
            job_id = job["id"]
            self.details[job_id] = split_details(job)
            self.active[job_id] = job
            self.index.track(job)
            if job.get("state") in ("active", "starting", "finishing"):
                job["updated"] = time.time()
                job["remote"] = False
                meta_line(job, "Conductor restarted; waiting for the satellite to report this job.")
            else:
                self._spawn(self._advance(job_id))
        if self.active:
            self.log.debug(2, f"Re-attached {len(self.active)} unfinished jobs after start")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.error("job", f"Job task failed: {exc!r}")

    # -- reads -----------------------------------------------------------------------------
    def get_active(self, job_id: str) -> dict[str, Any] | None:
        self.index.renumber(self.active)
        job = self.active.get(job_id)
        return {**job, **self.details.get(job_id, {})} if job else None

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return self.get_active(job_id) or await self.store.get(job_id)

    async def wait(self, job_id: str, seconds: float) -> dict[str, Any] | None:
        """The final record once the job ends (for `run_event/wait`); None on timeout."""
        if job_id not in self.active:
            return await self.store.get(job_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        try:
            return await asyncio.wait_for(future, seconds)
        except TimeoutError:
            return None

    def active_jobs(self) -> list[dict[str, Any]]:
        """Every active job (queued and delayed ones too), queue positions up to date."""
        self.index.renumber(self.active)
        return list(self.active.values())

    def active_for_event(self, event_id: str) -> list[dict[str, Any]]:
        self.index.renumber(self.active)
        return [self.active[job_id] for job_id in self.index.event_jobs(event_id)]

    def count_on_server(self, server_id: str) -> int:
        return self.index.on_server(server_id)

    # -- launch ----------------------------------------------------------------------------
    async def accept(self, job: dict[str, Any]) -> dict[str, Any]:
        """Store a built job durably, then start moving it. Returns once it is stored.

        A job that can start at once takes its server before the write, and one that must wait
        takes its place in the queue, so the one commit that makes it durable for the caller
        also makes it durable as ``starting`` or ``queued`` (one write per accept, not two).
        """
        self._check_ebrake()
        job_id = job["id"]
        self._admit(job)
        server = self._place(job)
        self.active[job_id] = job  # counted by concurrency limits while its row is written
        self.index.track(job)
        self.live.job_changed(job)
        try:
            await self.store.insert(self._record(job))
        except BaseException:
            self._forget(job_id)
            raise
        self._mark(job_id, "stored")
        if server is not None:
            self._spawn(self._launch(job, server))
        elif job.get("state") != "queued":
            self._spawn(self._advance(job_id))
        return job

    def _admit(self, job: dict[str, Any]) -> None:
        """What every accepted job gets before it is stored: its details split off, its first meta line."""
        self._clock.accepted(job["id"])
        self.details[job["id"]] = split_details(job)
        meta_line(job, f"Job starting: source {job.get('source', 'user')}, event {job.get('event')}")

    def _place(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """A `ready` job's first move before its first write: its server (returned), else its
        place in the queue; a job that can do neither stays `ready` and is aborted by `_advance`."""
        if job.get("state") != "ready" or self._may_suspend(job):
            return None
        server = self._claim(job)
        if server is None:
            self._enqueue(job, self._why_waiting(job)[0])
        return server

    def prepare(self, job: dict[str, Any]) -> dict[str, Any]:
        """Ready a built job for storing by someone else (see `adopt`): meta line, e-brake."""
        self._check_ebrake()
        meta_line(job, f"Job starting: source {job.get('source', 'user')}, event {job.get('event')}")
        return job

    def adopt(self, job: dict[str, Any]) -> None:
        """Take over a job its caller already stored (in its own transaction) and start moving it."""
        job_id = job["id"]
        self._clock.accepted(job_id)
        self.details[job_id] = split_details(job)
        self.active[job_id] = job
        self.index.track(job)
        self.live.job_changed(job)
        self._spawn(self._advance(job_id))

    def _check_ebrake(self) -> None:
        limit = self.ebrake_per_min
        minute = int(time.time() // 60)
        count = self._minute[1] + 1 if self._minute[0] == minute else 1
        if limit > 0 and count > limit:
            raise LaunchError("Global jobs per minute limit has been reached")
        self._minute = (minute, count)

    async def update_fields(self, job_id: str, fields: dict[str, Any]) -> bool:
        """`update_job` on an active job: merge the fields, re-file it in the queue index (its
        group follows `type`/`workflow`, its place `priority`, its server load the `job` limit),
        store it, and give the queue it joined a chance to start it. False: not active."""
        job = self.active.get(job_id)
        if job is None or job_id in self._finishing:
            return False
        for name, value in fields.items():
            if name in DETAIL_KEYS:
                self.details.setdefault(job_id, {})[name] = value
            else:
                job[name] = value
        self.index.refile(job)
        self.live.job_changed(job)
        await self.store.save(self._record(job))
        group = self.index.key_of(job_id)
        if job.get("state") == "queued" and group is not None:
            self._drain_queue(group)
        return True

    # -- the state machine -----------------------------------------------------------------
    async def _advance(self, job_id: str) -> None:
        job = self.active.get(job_id)
        if job is None or job_id in self._finishing:
            return
        state = job.get("state")
        if state in DELAY_STATES:
            wait = float(job.get("until") or 0) - time.time()
            if wait > 0:
                self._timer(job_id, wait, lambda: self._spawn(self._release_delay(job_id)))
                return
            self._set_state(job, "ready")
            job.pop("until", None)
        if job.get("state") == "ready":
            await self._start(job)

    async def skip_delay(self, job_id: str, note: str) -> bool:
        """`job_skip_delay`: a job waiting out a start or retry delay goes on now (`until` = now).
        False when the job is not active or not delayed. Its pending timer finds it released."""
        job = self.active.get(job_id)
        if job is None or job_id in self._finishing or job.get("state") not in DELAY_STATES:
            return False
        job["until"] = round(time.time(), 3)
        meta_line(job, note)
        await self._release_delay(job_id)
        return True

    async def _release_delay(self, job_id: str) -> None:
        job = self.active.get(job_id)
        if job is not None and job.get("state") in DELAY_STATES:
            self._set_state(job, "ready")
            job.pop("until", None)
            await self._start(job)

    def _set_state(self, job: dict[str, Any], state: str, **fields: Any) -> None:
        """Every state change the manager makes, so the queue index stays true."""
        job.update(state=state, **fields)
        self.index.update(job)
        self.live.job_changed(job)

    async def _start(self, job: dict[str, Any]) -> None:
        """`ready`: concurrency limit, server choice, then persist and send the launch."""
        if await self._held(job, lambda: ["start"]):
            return
        server = self._claim(job)
        if server is None:
            return await self._cannot_start(job)
        await self.store.save(self._record(job))  # durable before the launch leaves
        await self._launch(job, server)

    def _claim(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """Take a concurrency slot and a server (state `starting`), or None and change nothing."""
        if self._at_job_limit(job):
            return None
        server = self._choose_server(job)
        if server is None:
            return None
        self._set_state(job, "starting", server=server["id"], groups=list(server.get("groups") or []))
        if isinstance(server.get("userData"), dict):  # plugins read it as details.serverData
            self.details.setdefault(job["id"], {})["serverData"] = dict(server["userData"])
        job.pop("position", None)
        meta_line(job, f"Chosen server: {server.get('hostname', server['id'])} ({job.get('algo', 'random')})")
        return server

    async def _cannot_start(self, job: dict[str, Any]) -> None:
        """Why `_claim` said no, as a queue entry or an abort."""
        await self._queue_or_abort(job, *self._why_waiting(job))

    def _why_waiting(self, job: dict[str, Any]) -> tuple[str, bool]:
        """The reason `_claim` said no, and whether an abort for it may be retried (§6 step 7, §8.1)."""
        if self._at_job_limit(job):
            return "Maximum number of concurrent jobs for event has been reached", False
        return "No available servers matching targets", True

    def _at_job_limit(self, job: dict[str, Any]) -> bool:
        job_limit = first_enabled(job.get("limits") or [], "job")
        if job_limit is None:
            return False
        return self.index.running(job) >= float(job_limit.get("amount") or 0) > 0

    async def _launch(self, job: dict[str, Any], server: dict[str, Any]) -> None:
        """Send a stored `starting` job to its server (with its secrets) and mark it active."""
        if job["id"] not in self.active or job.get("state") != "starting":
            return  # aborted while we were writing
        sec = await self.secrets_for(job)
        now = round(time.time(), 3)
        self._set_state(job, "active", started=now, updated=now, progress=0, remote=True)
        payload = {"job": {k: v for k, v in job.items() if k != "activity"},
                   "details": self.details.get(job["id"], {}), "sec": sec}
        if not self.fleet.send(server["id"], "launch_job", payload):
            job["remote"] = False
            await self._abort_now(job, f"Could not send the job to server {server['id']}.", retry_ok=True)
            return
        self._mark(job["id"], "launched")
        self._arm_time_limit(job)
        self._count(job, ["start"])
        self._fire(job, ["start"])

    def _available(self, job: dict[str, Any], servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Target servers that may take the job now (sec. 6 steps 1-5): online, enabled, under their cap."""
        return with_room(candidates(job.get("targets") or [], servers), job_weight(job), self.index.load,
                         self.group_of)

    def _choose_server(self, job: dict[str, Any]) -> dict[str, Any] | None:
        pool = self._available(job, self.fleet.online_servers())
        if not pool:
            return None
        event_id = str(job.get("event"))

        def robin(count: int) -> int:
            index = self._robin.get(event_id, 0)
            self._robin[event_id] = (index + 1) % max(count, 1)
            return index

        return pick(str(job.get("algo") or "random"), pool, robin=robin, active_count=self.count_on_server)

    async def _queue_or_abort(self, job: dict[str, Any], reason: str, retry_ok: bool = False) -> None:
        was_queued = job.get("state") == "queued"
        if self._enqueue(job, reason):
            if not was_queued:
                await self.store.save(self._record(job))
            return
        suffix = ", and the queue is maxed out." if self._queue_amount(job) > 0 else "."
        await self._abort_now(job, reason + suffix, retry_ok=retry_ok)

    def _enqueue(self, job: dict[str, Any], reason: str) -> bool:
        """Put the job in its queue (state only, no write) if its `queue` limit has room."""
        amount = self._queue_amount(job)
        queued = self.index.queued(job) - (job.get("state") == "queued")  # the others in line
        if not (amount > 0 and queued < amount):
            return False
        if job.get("state") != "queued":
            self._set_state(job, "queued", position=0 if job.get("priority") else queued + 1)
            meta_line(job, f"{reason}; job was queued.")
        return True

    @staticmethod
    def _queue_amount(job: dict[str, Any]) -> float:
        queue_limit = first_enabled(job.get("limits") or [], "queue")
        return float(queue_limit.get("amount") or 0) if queue_limit else 0

    def _drain_queue(self, key: str | None = None) -> None:
        """A slot or server freed up: start the next queued job of one group, or of each group
        (at most one per group per pass), when its group is under the job limit and a server is there."""
        servers: list[dict[str, Any]] | None = None
        for group in [key] if key is not None else self.index.waiting_groups():
            job_id = self.index.next_queued(group)
            job = self.active.get(job_id) if job_id else None
            if job is None or self._at_job_limit(job):
                continue
            servers = self.fleet.online_servers() if servers is None else servers
            if not self._available(job, servers):
                continue
            self._set_state(job, "ready")
            self._spawn(self._start(job))

    # -- timers and limits -----------------------------------------------------------------
    def _timer(self, job_id: str, delay: float, callback: Callable[[], None]) -> None:
        handle = asyncio.get_running_loop().call_later(max(delay, 0), callback)
        self._timers.setdefault(job_id, []).append(handle)

    def _arm_time_limit(self, job: dict[str, Any]) -> None:
        limit = next((lim for lim in job.get("limits") or [] if isinstance(lim, dict) and lim.get("type") == "time"
                      and lim.get("enabled") and not lim.get("date")), None)
        if limit and isinstance(limit.get("duration"), int | float) and limit["duration"] > 0:
            job_id = job["id"]
            self._timer(job_id, float(limit["duration"]), lambda: self._spawn(self._time_exceeded(job_id, limit)))

    async def _time_exceeded(self, job_id: str, limit: dict[str, Any]) -> None:
        job = self.active.get(job_id)
        if job is None or job.get("state") != "active":
            return
        message = f"Job elapsed time has exceeded maximum limit of {seconds_text(limit['duration'])}."
        await self._limit_fired(job, limit, message)

    async def _limit_fired(self, job: dict[str, Any], limit: dict[str, Any], message: str) -> None:
        limit.update(date=round(time.time(), 3), description=message)
        meta_line(job, message)
        job["tags"] = list(dict.fromkeys([*(job.get("tags") or []), *(limit.get("tags") or [])]))
        if limit.get("abort"):
            await self.abort(job["id"], message, retry_ok=True)

    def _check_resource_limits(self, job: dict[str, Any]) -> None:
        now = time.time()
        for limit in job.get("limits") or []:
            if not isinstance(limit, dict) or not limit.get("enabled") or limit.get("date"):
                continue
            kind = limit.get("type")
            if kind == "log" and isinstance(limit.get("amount"), int | float) and \
                    job.get("log_file_size", 0) > limit["amount"]:
                self._spawn(self._limit_fired(job, limit, f"Job output size has exceeded maximum limit of "
                                                          f"{bytes_text(limit['amount'])}."))
            elif kind in ("cpu", "mem"):
                current = (job.get(kind) or {}).get("current")
                if not isinstance(current, int | float) or current <= float(limit.get("amount") or 0):
                    limit.pop("when", None)
                    continue
                limit.setdefault("when", now)
                if now - limit["when"] >= float(limit.get("duration") or 0):
                    self._spawn(self._limit_fired(job, limit, _resource_message(kind, limit)))

    async def _sweep_forever(self) -> None:
        """Off the hot path: jobs whose satellite went silent are declared dead, and a queue pass
        over the waiting groups (a pass starts one job per group, so after a satellite came back
        a queue with several free slots fills one job per completion or per sweep)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.time()
            for job in list(self.active.values()):
                if job.get("state") in ("active", "starting", "finishing") and \
                        now - float(job.get("updated") or job.get("started") or now) >= self.dead_job_timeout:
                    await self.abort(job["id"], f"No updates received in last {seconds_text(self.dead_job_timeout)}"
                                                ", assuming job is dead.", retry_ok=True)
            self._drain_queue()

    # -- messages from satellites ----------------------------------------------------------
    def handle_updates(self, server_id: str, updates: dict[str, Any]) -> None:
        """A `jobs` frame: partial job objects keyed by id."""
        for job_id, update in updates.items():
            if not isinstance(update, dict):
                continue
            job = self.active.get(job_id)
            if job is None:
                if update.get("state") == "complete":
                    self._spawn(self._late_update(job_id, update))
                continue
            if job.get("server") != server_id or job_id in self._finishing:
                continue
            self._merge_update(job, update)
            if update.get("state") == "complete":
                self._mark(job_id, "reported")
                self._spawn(self._finish(job))
            else:
                self._check_resource_limits(job)

    def _merge_update(self, job: dict[str, Any], update: dict[str, Any]) -> None:
        merge_agent_update(job, self.details.setdefault(job["id"], {}), update)
        if "state" in update:
            self.index.update(job)
        self.live.job_changed(job)

    def handle_log(self, server_id: str, data: dict[str, Any]) -> None:
        job = self.active.get(str(data.get("id")))
        text = data.get("text")
        if job is None or job.get("server") != server_id or not isinstance(text, str):
            return
        job["log_file_size"] = int(job.get("log_file_size") or 0) + self.logs.append(job["id"], text)
        self.live.job_log(job, text)
        if any(isinstance(lim, dict) and lim.get("type") == "log" for lim in job.get("limits") or []):
            self._check_resource_limits(job)

    def handle_meta(self, server_id: str, data: dict[str, Any]) -> None:
        job = self.active.get(str(data.get("id")))
        if job is not None and isinstance(data.get("text"), str):
            meta_line(job, data["text"][:2000], server_id)

    async def finish_from_api(self, job_id: str, final: dict[str, Any], server_id: str | None) -> bool:
        """`finish_job`: the satellite's final report over HTTP."""
        job = self.active.get(job_id)
        if job is None:
            await self._late_update(job_id, final)
            return False
        if server_id and job.get("server") != server_id:
            return False
        self._merge_update(job, final)
        await self._finish(job)
        return True

    def server_offline(self, server_id: str) -> None:
        for job in self.active.values():
            if job.get("server") == server_id and job.get("state") == "active":
                job["remote"] = False
                meta_line(job, "Lost connection to the satellite; waiting for it to reconnect.")

    def server_online(self, server_id: str) -> None:
        self._drain_queue()

    async def _late_update(self, job_id: str, update: dict[str, Any]) -> None:
        record = await self.store.get(job_id)
        if record is None or not record.get("final"):
            return
        if record.get("code") == "abort":
            record.update(code="warning", description=(record.get("description") or "") +
                          " (received late update after completion.)")
        await self.store.save(record)

    # -- abort and finish ------------------------------------------------------------------
    async def abort(self, job_id: str, reason: str, retry_ok: bool = False) -> bool:
        job = self.active.get(job_id)
        if job is None or job_id in self._finishing:
            return False
        if retry_ok:
            job["retry_ok"] = True
        if job.get("state") == "active" and job.get("remote"):
            meta_line(job, f"Aborting job: {reason}")
            job.update(code="abort", description=reason)
            if self.fleet.send(str(job.get("server")), "abort_job", {"id": job_id, "reason": reason}):
                return True
        await self._abort_now(job, reason, retry_ok)
        return True

    async def _abort_now(self, job: dict[str, Any], reason: str, retry_ok: bool = False) -> None:
        job.update(code="abort", description=reason, complete=True)
        job.pop("suspended", None)
        if retry_ok:
            job["retry_ok"] = True
        await self._finish(job)

    async def flush_queue(self, event_id: str) -> int:
        queued = [job_id for job_id in self.index.event_jobs(event_id) if self.active[job_id].get("state") == "queued"]
        for job_id in queued:
            self._forget(job_id)
            await self.store.delete(job_id)
        return len(queued)

    def _forget(self, job_id: str) -> None:
        self.index.untrack(job_id)
        job = self.active.pop(job_id, None)
        if job is not None:
            self.live.job_gone(job)
        self.details.pop(job_id, None)
        self._clock.forget(job_id)
        for handle in self._timers.pop(job_id, []):
            handle.cancel()

    def _mark(self, job_id: str, stage: str) -> None:
        self._clock.mark(job_id, stage)

    def _log_timing(self, job_id: str) -> None:
        summary = self._clock.summary(job_id)
        if summary is not None:
            self.log.debug(9, f"Job {job_id} timing (ms): {summary}")

    def _record(self, job: dict[str, Any]) -> dict[str, Any]:
        return {**job, **self.details.get(job["id"], {})}

    async def _finish(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        if job_id in self._finishing or job_id not in self.active:
            return
        self._finishing.add(job_id)
        group = self.index.key_of(job_id)
        try:
            if await self._held(job, lambda: self._completion_preview(job), then_state="complete"):
                return
            record = self._final_record(job)
            retry = self._next_attempt(job, record)
            record["tags"] = chain_tags(record.get("tags") or [], retried=retry is not None)
            if retry is not None:
                record["retried"] = True
                record.setdefault("jobs", []).append({"id": retry["id"], "reason": "retry"})
            await self._store_final(record, retry)
            self.live.job_final(record)
            self._log_timing(job_id)
            self._forget(job_id)
            for waiter in self._waiters.pop(job_id, []):
                if not waiter.done():
                    waiter.set_result(record)
            if retry is not None:
                self._spawn(self._advance(retry["id"]))
            self._apply_side_effects(record)
            conditions = completion_conditions(record)
            self._count(record, conditions)
            self._fire(record, conditions)
            if self._frees_capped_server(record):
                self._drain_queue()  # a slot on a capped server may fit a job of any queue
            elif group is not None:
                self._drain_queue(group)
        finally:
            self._finishing.discard(job_id)

    def _next_attempt(self, job: dict[str, Any], record: dict[str, Any]) -> dict[str, Any] | None:
        """The retry of a failed job (§8.4), admitted as `ready`/`retry_delay` (no slot, no
        server yet), or None. `retry_ok` (stale job, limit abort, no servers) lives on the live
        job only: the stored record never carries it. A retry the launch checks refuse leaves a
        meta line, and the job ends as a plain failure (its completion actions fire)."""
        if self.retry_gate is None:
            return None
        retry = retry_copy({**record, "retry_ok": bool(job.get("retry_ok"))})
        if retry is None:
            return None
        try:
            self.retry_gate(retry)
            self._check_ebrake()
        except LaunchError as exc:
            meta_line(record, f"Job was not retried: {exc.description}")
            return None
        self._admit(retry)
        self.active[retry["id"]] = retry
        self.index.track(retry)
        self.live.job_changed(retry)
        return retry

    async def _store_final(self, record: dict[str, Any], retry: dict[str, Any] | None) -> None:
        """The final record and its retry are queued together, so they share one commit: a crash
        can neither lose the retry of a job marked `retried` nor leave a retry of a live job."""
        writes = [self.store.save(record)]
        if retry is not None:
            writes.append(self.store.insert(self._record(retry)))
        results = await asyncio.gather(*writes, return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            if retry is not None:
                self._forget(retry["id"])
            raise failed
        if retry is not None:
            self._mark(retry["id"], "stored")

    def _frees_capped_server(self, record: dict[str, Any]) -> bool:
        server_id = record.get("server")
        if not server_id or not self.index.waiting_groups():
            return False
        return any(s.get("id") == server_id and server_cap(s, self.group_of) for s in self.fleet.online_servers())

    # -- suspension (suspend actions) ---------------------------------------------------------
    def _may_suspend(self, job: dict[str, Any]) -> bool:
        """Cheap pre-check: only a job with a suspend action (or already suspended) asks the gate."""
        return self.suspend_gate is not None and (bool(job.get("suspended")) or any(
            isinstance(a, dict) and a.get("type") == "suspend" and a.get("enabled") for a in job.get("actions") or []))

    async def _held(self, job: dict[str, Any], conditions: Callable[[], list[str]], then_state: str = "") -> bool:
        """A suspended job neither starts nor finishes until `resume`; stored so a restart keeps it."""
        if self.suspend_gate is None or not self._may_suspend(job):
            return False
        if not job.get("suspended") and not await self.suspend_gate(job, conditions()):
            return False
        if then_state:
            self._set_state(job, then_state)  # out of the running count: a held job keeps no slot
        self.live.job_changed(job)  # an open job page shows the hold at once
        if job["id"] in self.active:
            await self.store.save(self._record(job))
            key = self.index.key_of(job["id"])
            if key is not None:
                self._drain_queue(key)
        return True

    def _completion_preview(self, job: dict[str, Any]) -> list[str]:
        """The conditions `_finish` is about to fire (none when a retry follows)."""
        view = {**self._record(job), "code": normalize_code(job.get("code"))}
        if self.retry_gate is not None and retry_copy(view) is not None:
            return []
        return completion_conditions({**view, "tags": final_tags(view, self.known_tags())})

    async def resume(self, job_id: str, params: dict[str, Any] | None, note: str) -> bool:
        """`resume_job`: a suspended job goes on from where it stopped (its start, or its finish)."""
        job = self.active.get(job_id)
        if job is None or not job.get("suspended") or job_id in self._finishing:
            return False
        del job["suspended"]
        if params:
            job["params"] = {**(job.get("params") or {}), **params}
        meta_line(job, note)
        self.live.job_changed(job)
        if job.get("state") == "complete":
            await self._finish(job)
        else:
            await self._advance(job_id)
        return True

    def _count(self, job: dict[str, Any], conditions: list[str]) -> None:
        if self.daily is not None:
            self.daily.add(stat_names(job, conditions))

    def uncount(self, record: dict[str, Any]) -> None:
        """A finished job was deleted: if it completed today, its completion stats no longer count."""
        if self.daily is not None and record.get("final") and isinstance(record.get("completed"), int | float):
            self.daily.add(stat_names(record, completion_conditions(record)), -1, day=local_day(record["completed"]))

    def _apply_side_effects(self, record: dict[str, Any]) -> None:
        """What the plugin asked for at completion: change or delete its event, server data."""
        actor = str(record.get("username") or record.get("api_key") or "system")
        update, delete = record.get("update_event"), bool(record.get("delete_event"))
        if self.event_changer is not None and record.get("event") and (delete or isinstance(update, dict)):
            self._spawn(self.event_changer(str(record["event"]), update if isinstance(update, dict) else None,
                                           delete, actor))
        data = record.get("serverData")
        if self.server_data_sink is not None and record.get("server") and isinstance(data, dict) and data:
            self._spawn(self.server_data_sink(str(record["server"]), data))

    def _final_record(self, job: dict[str, Any]) -> dict[str, Any]:
        now = round(time.time(), 3)
        record = self._record(job)
        for key in ("remote", "redraw", "status", "procs", "conns", "retry_ok", "until", "position"):
            record.pop(key, None)
        record["code"] = normalize_code(record.get("code"))
        if record["code"] and not record.get("description"):
            record["description"] = "Unknown Error (no description provided)"
        size, inline = self.logs.finalize(job["id"], self.inline_log_limit)
        if inline is not None:
            record["output"] = inline
        elif size:
            record["log_uploaded"] = True
        elif record["code"] and record.get("description"):
            record["output"] = str(record["description"]) + "\n"
        record.update(state="complete", complete=True, final=True, completed=now, progress=1,
                      log_file_size=size or len(record.get("output", "")),
                      elapsed=round(max(0.0, now - float(record.get("started") or now)), 3))
        record["tags"] = final_tags(record, self.known_tags())
        outcome = "was aborted" if record["code"] == "abort" else \
            (f"failed with code {record['code']}" if record["code"] else "completed successfully")
        meta_line(record, f"Job {outcome}.")
        return record

    def _fire(self, job: dict[str, Any], conditions: list[str]) -> None:
        """Run the condition hooks (job actions) on a copy. A job without actions has nothing for
        them to do, and skipping it spares a deep copy of the job per hook on the hot path."""
        if not job.get("actions"):
            return
        for hook in self.condition_hooks:
            self._spawn(hook(copy.deepcopy(job), conditions))


def _resource_message(kind: str, limit: dict[str, Any]) -> str:
    """The words of a fired `mem`/`cpu` limit (events spec §8.2)."""
    sustain = seconds_text(float(limit.get("duration") or 0), secondary=False)
    if kind == "mem":
        return f"Job memory usage has exceeded maximum limit of {bytes_text(limit['amount'])} for {sustain}."
    amount = float(limit["amount"])
    percent = int(amount) if amount.is_integer() else amount
    return f"Job CPU usage has exceeded maximum limit of {percent}% for {sustain}."


async def _no_secrets(job: dict[str, Any]) -> dict[str, str]:
    return {}

