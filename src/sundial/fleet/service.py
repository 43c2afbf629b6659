"""The fleet service: online servers, joins and leaves, groups, metrics, and the job manager's view.

State of online servers lives in memory on the conductor (xyOps does the same); the database
holds the record of every server ever seen. Writes caused by joins, leaves and group changes
go through one ordered queue (a join and the following leave of one server can never land in
the wrong order); the latest minute samples are written behind in batches. Nothing on the
per-second path touches the database.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sundial import protocol as p
from sundial.activity import SYSTEM, ClientInfo
from sundial.fleet.hub import Hub, Socket
from sundial.fleet.install import Installer, joined_config
from sundial.fleet.local import LocalSatellite
from sundial.fleet.metrics import STOCK_QUICK_MONITORS, MetricsKeeper
from sundial.fleet.records import (
    HELLO_DENY,
    Server,
    assign_groups,
    ensure_info,
    identity_changes,
    joined_record,
    keywords,
    stored_copy,
)
from sundial.fleet.store import ServerStore, sample_key
from sundial.live.feeds import ServerFeed
from sundial.storage.records import get_record

if TYPE_CHECKING:
    from sundial.services import Services
    from sundial.vault.service import RotationEvent

OFFLINE_CACHE_MAX = 10
OFFLINE_CACHE_TTL = 86400.0
SAMPLE_FLUSH_SEC = 5.0
NOTICE_LIMIT_PER_MIN = 30
AUTH_WARNING_EVERY_SEC = 60.0
NOTICE_TYPES = ("notice", "warning", "error", "critical")
#: What ``update_server`` may not change: identity, connection facts and bookkeeping.
LOCKED_FIELDS = HELLO_DENY - {"autoGroup"}


class FleetError(Exception):
    """A refused server operation, with the xyOps error code."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def _summary(record: Server) -> dict[str, Any]:
    return {k: record.get(k) for k in ("id", "hostname", "ip", "title", "groups", "enabled")}


class FleetService:
    """Servers and their satellites, for the hub, the job manager and the server verbs."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.config
        self.log = services.logger("Fleet")
        self.store = ServerStore(services.storage)
        self.online: dict[str, Server] = {}
        self.offline: dict[str, Server] = {}
        self.metrics = MetricsKeeper(self._quick_monitors, lambda: services.list("monitors").all(),
                                     quick_max=int(self.config.get("quick_max", 60) or 60))
        self.hub = Hub(self, self.log, ping_freq=lambda: float(self.config.get("ping_freq_sec") or 5),
                       ping_timeout=lambda: float(self.config.get("ping_timeout_sec") or 30))
        self.live = ServerFeed(services.live)  # per-second rows and online/offline to live subscribers
        self.installer = Installer(self.config, services.storage, self.host_id, self.known)
        self.local = LocalSatellite(self.config, services.logger("Fleet"), secret_key=self.secret_key)
        self._writes: asyncio.Queue[Callable[[], Awaitable[None]]] | None = None
        self._dirty: dict[str, dict[str, Any]] = {}
        self._leave_batch: list[Server] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._notices: dict[str, tuple[int, int]] = {}
        self._auth_warned: dict[str, float] = {}
        self._handlers: dict[str, Callable[[Socket, dict[str, Any]], None]] = {
            "jobs": lambda s, d: services.jobs.handle_updates(s.server_id, d),
            "job_log": lambda s, d: services.jobs.handle_log(s.server_id, d),
            "job_meta": lambda s, d: services.jobs.handle_meta(s.server_id, d),
            "monitor": self._monitor, "quickmon": self._quickmon,
            "monitorPluginTestResult": lambda s, d: None,
            **{kind: functools.partial(self._notice, kind) for kind in NOTICE_TYPES},
        }
        services.objects.on_change("groups", lambda what, doc: self._spawn(self.rematch_all()))
        services.objects.on_change("plugins", lambda what, doc: self._spawn(self.push_plugins()))
        services.vault.listeners.append(lambda what, meta: self._spawn(self.push_plugins(commands_only=True)))
        services.vault.rotation_hooks.append(self.rotated)
        services.jobs.server_data_sink = self.merge_server_data

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.mark_all_offline()
        self._writes = asyncio.Queue()
        self._tasks += [asyncio.create_task(self._write_forever()), asyncio.create_task(self._flush_forever())]
        self.hub.start()
        if self.services.is_primary():
            self.local.start()

    async def stop(self) -> None:
        await self.local.stop()
        await self.hub.stop()
        await self._drain_writes()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush_samples()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned_done)

    def _spawned_done(self, task: asyncio.Task[Any]) -> None:
        self._spawned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("fleet", f"Background fleet task failed: {task.exception()!r}")

    def _queue_write(self, write: Callable[[], Awaitable[None]]) -> None:
        if self._writes is not None:
            self._leave_batch = None  # a leave after this write must not be committed before it
            self._writes.put_nowait(write)

    def _queue_leave(self, record: Server) -> None:
        """Leaves queued back to back share one transaction: a conductor shutdown or a network
        blip that drops 500 satellites at once costs one commit, not 500."""
        if self._writes is None:
            return
        if self._leave_batch is None:
            batch: list[Server] = []
            self._leave_batch = batch
            self._writes.put_nowait(lambda: self._persist_leaves(batch))
        self._leave_batch.append(record)

    async def _write_forever(self) -> None:
        assert self._writes is not None
        while True:
            write = await self._writes.get()
            try:
                await write()
            except Exception:
                self.log.error("fleet", "Server record write failed", {"trace": traceback.format_exc(limit=6)})
            finally:
                self._writes.task_done()

    async def _drain_writes(self) -> None:
        if self._writes is not None and not self._writes.empty():
            try:
                await asyncio.wait_for(self._writes.join(), 10)
            except TimeoutError:
                self.log.error("fleet", "Gave up waiting for queued server writes at shutdown")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_FLUSH_SEC)
            try:
                await self._flush_samples()
            except Exception:
                self.log.error("fleet", "Saving monitor samples failed", {"trace": traceback.format_exc(limit=6)})

    async def _flush_samples(self) -> None:
        dirty, self._dirty = self._dirty, {}
        if dirty:
            await self.store.save_samples(dirty)

    # -- facts other parts ask for ---------------------------------------------------------------

    def secret_key(self) -> str:
        return str(self.config.get("secret_key") or "")

    def host_id(self) -> str:
        return self.services.hostname

    def masters(self) -> list[str]:
        masters = self.services.extras.get("masters")
        return list(masters) if isinstance(masters, list) and masters else [self.host_id()]

    def primary(self) -> tuple[bool, str]:
        return self.services.is_primary(), str(self.services.extras.get("primary_host") or "")

    def known(self, server_id: str) -> bool:
        """Online or recently offline: who may use its own auth token on the upgrade endpoint."""
        return server_id in self.online or server_id in self.offline

    def _quick_monitors(self) -> list[dict[str, Any]]:
        configured = self.config.get("quick_monitors")
        return configured if isinstance(configured, list) and configured else STOCK_QUICK_MONITORS

    # -- the job manager's view (jobs.manager.Fleet) --------------------------------------------

    def online_servers(self) -> list[Server]:
        """Online server records in join order (the "natural" order of xyOps's algorithms)."""
        return list(self.online.values())

    def send(self, server_id: str, cmd: str, data: dict[str, Any]) -> bool:
        return self.hub.send_to_server(server_id, cmd, data)

    # -- the hub's owner interface -------------------------------------------------------------

    def duplicate_hostname(self, server_id: str, hostname: str) -> str | None:
        record = self.online.get(server_id)
        if record is not None and record.get("hostname") != hostname:
            return str(record.get("hostname"))
        return None

    async def join(self, sock: Socket) -> dict[str, Any]:
        """``addServer`` (servers-groups-monitoring.md §1.1), then the ``joined`` payload."""
        sid = sock.server_id
        stored = self.offline.pop(sid, None) or await self.store.get(sid)
        record = joined_record(server_id=sid, hostname=sock.hostname, ip=sock.ip, socket_id=sock.socket_id,
                               hello=sock.hello, stored=stored, now=int(time.time()))
        assign_groups(record, self.services.list("groups").all())
        record["keywords"] = keywords(record)
        self.online[sid] = record
        if self.metrics.latest(sid) is None:
            self._spawn(self._load_sample(sid))
        notes = identity_changes(stored, sock.hostname, sock.ip)
        self._queue_write(lambda: self._persist_join(copy.deepcopy(record), notes))
        self.services.jobs.server_online(sid)
        self.live.online(sid, True, list(record.get("groups") or []))
        self.log.debug(3, f"Server joined: {sock.label()}")
        return await self.joined_payload(record)

    async def joined_payload(self, record: Server) -> dict[str, Any]:
        plugins, commands = await self.agent_plugins()
        return {"config": joined_config(self.config), "masterData": {"masters": self.masters()},
                "groups": list(record.get("groups") or []), "plugins": plugins, "commands": commands,
                "numServers": len(self.online), "features": {"api_finish_job": True}}

    async def agent_plugins(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Event plugins, and monitor plugins (``commands``) with their secrets resolved."""
        every = self.services.list("plugins").all()
        plugins = [copy.deepcopy(pl) for pl in every if pl.get("type") == "event"]
        commands = []
        for plugin in every:
            if plugin.get("type") == "monitor":
                command = copy.deepcopy(plugin)
                command["sec"] = await self.services.vault.secrets_for("plugins", str(plugin.get("id")))
                commands.append(command)
        return plugins, commands

    async def _persist_join(self, record: Server, notes: list[str]) -> None:
        host, ip = record.get("hostname"), record.get("ip")
        async with self.services.storage.transaction() as tx:
            await self.store.upsert(tx, record, online=True)
            for note in notes:
                await self.services.activity.record(tx, "warning", note, keywords=[record["id"], str(host)],
                                                    server=_summary(record))
            await self.services.activity.record(tx, "server_add", f"Server connected to the network: {host} ({ip})",
                                                keywords=[record["id"], str(host)], server=_summary(record))

    async def _load_sample(self, server_id: str) -> None:
        async with self.services.storage.read() as conn:
            sample = await get_record(conn, sample_key(server_id))
        if isinstance(sample, dict):
            self.metrics.remember_latest(server_id, sample)

    def leave(self, sock: Socket) -> None:
        """``removeServer`` (§1.2): only for the socket that is the server's current one."""
        record = self.online.get(sock.server_id)
        if record is None or record.get("socket_id") != sock.socket_id:
            return
        del self.online[sock.server_id]
        self.metrics.forget_quick(sock.server_id)
        record["modified"] = int(time.time())  # record times are whole seconds (events spec §1)
        record.pop("socket_id", None)
        self._cache_offline(record)
        self.services.jobs.server_offline(sock.server_id)
        self.live.online(sock.server_id, False, list(record.get("groups") or []))
        self.log.debug(3, f"Server left: {sock.label()}")
        pending = record.pop("delete", None)
        if pending is not None:
            self._queue_write(lambda: self._delete_now(record["id"], str(pending.get("username") or ""), record))
        else:
            self._queue_leave(copy.deepcopy(record))

    def _cache_offline(self, record: Server) -> None:
        now = time.time()
        self.offline[record["id"]] = record
        for sid, rec in list(self.offline.items()):
            if now - float(rec.get("modified") or 0) > OFFLINE_CACHE_TTL:
                del self.offline[sid]
        while len(self.offline) > OFFLINE_CACHE_MAX:
            oldest = min(self.offline, key=lambda k: float(self.offline[k].get("modified") or 0))
            del self.offline[oldest]

    async def _persist_leaves(self, batch: list[Server]) -> None:
        if self._leave_batch is batch:
            self._leave_batch = None
        async with self.services.storage.transaction() as tx:
            for record in batch:
                host, ip = record.get("hostname"), record.get("ip")
                await self.store.upsert(tx, record, online=False)
                await self.services.activity.record(tx, "server_remove",
                                                    f"Server disconnected from the network: {host} ({ip})",
                                                    keywords=[record["id"], str(host)], server=_summary(record))

    def auth_failed(self, sock: Socket, reason: str) -> None:
        """Log every refusal; an activity warning at most once a minute per address (no DB flood)."""
        self.log.error("auth", f"Satellite authentication failed: {sock.label()}: {reason}")
        now = time.time()
        if now - self._auth_warned.get(sock.ip, 0.0) < AUTH_WARNING_EVERY_SEC:
            return
        self._auth_warned[sock.ip] = now
        if len(self._auth_warned) > 10000:
            self._auth_warned.clear()
        text = f"Satellite authentication failed: {sock.hostname or 'unknown host'} ({sock.ip}): {reason}"
        self._queue_write(lambda: self._activity("warning", text, [sock.server_id, sock.ip]))

    async def _activity(self, action: str, text: str, words: list[str], **payload: Any) -> None:
        async with self.services.storage.transaction() as tx:
            await self.services.activity.record(tx, action, text, keywords=[w for w in words if w], **payload)

    def on_message(self, sock: Socket, frame: p.Frame) -> None:
        """An authenticated frame: validate its shape, then route it."""
        handler = self._handlers.get(frame.cmd)
        if handler is None:
            raise p.FrameError(f"unknown command '{frame.cmd[:64]}'")
        p.parse_agent_message(frame)
        handler(sock, frame.data)

    # -- metrics -----------------------------------------------------------------------------

    def _quickmon(self, sock: Socket, data: dict[str, Any]) -> None:
        row = self.metrics.add_quick(sock.server_id, data)
        if row is not None:
            self.live.quickmon(sock.server_id, row, self.online.get(sock.server_id))

    def _monitor(self, sock: Socket, data: dict[str, Any]) -> None:
        record = self.online.get(sock.server_id)
        if record is None:
            return
        sample = self.metrics.add_minute(sock.server_id, data, ip=sock.ip, hostname=sock.hostname,
                                         groups=list(record.get("groups") or []))
        if sample is None:
            return
        values = sample["data"]
        if not values.get("dummy"):
            info = record.setdefault("info", {})
            for key in ("cpu", "memory", "process"):
                if isinstance(values.get(key), dict) and values[key]:
                    info[key] = values[key]
            info["monitors"], info["deltas"] = values.get("monitors") or {}, values.get("deltas") or {}
            ensure_info(info)
        self._dirty[sock.server_id] = sample

    def _notice(self, kind: str, sock: Socket, data: dict[str, Any]) -> None:
        """Agent ``notice``/``warning``/``error``/``critical`` → activity, capped per server per minute."""
        minute = int(time.time() // 60)
        seen_minute, count = self._notices.get(sock.server_id, (minute, 0))
        count = count + 1 if seen_minute == minute else 1
        self._notices[sock.server_id] = (minute, count)
        if count > NOTICE_LIMIT_PER_MIN:
            return
        text = str(data.get("description") or "")[:2000]
        details = data.get("details") if isinstance(data.get("details"), str) else None
        self._queue_write(lambda: self._activity(kind, text, [sock.server_id, sock.hostname],
                                                 server=sock.server_id, hostname=sock.hostname, ip=sock.ip,
                                                 **({"details": details[:65536]} if details else {})))

    # -- groups, plugins, rotation ----------------------------------------------------------------

    async def rematch_all(self) -> int:
        """Re-apply group rules to every server after a group change; push ``update {groups}``."""
        groups = self.services.list("groups").all()
        changed: list[tuple[Server, bool]] = []
        for sid, record in list(self.online.items()):
            if assign_groups(record, groups):
                record["keywords"] = keywords(record)
                self.hub.send_to_server(sid, "update", {"groups": list(record["groups"])})
                changed.append((copy.deepcopy(record), True))
        for record in await self.store.all():
            if record["id"] not in self.online and assign_groups(record, groups):
                record["keywords"] = keywords(record)
                changed.append((record, False))
        if changed:
            self._queue_write(lambda: self._upsert_many(changed))
        return len(changed)

    async def _upsert_many(self, records: list[tuple[Server, bool]]) -> None:
        await self.store.upsert_many(records)

    async def push_plugins(self, commands_only: bool = False) -> int:
        plugins, commands = await self.agent_plugins()
        data: dict[str, Any] = {"commands": commands} if commands_only else {"plugins": plugins, "commands": commands}
        return self.hub.broadcast("update", data)

    async def rotated(self, event: RotationEvent) -> dict[str, int]:
        """Key rotation hook: every connected agent gets its token under the new key."""
        new_key = event.new.reveal()
        count = 0
        for sid in list(self.hub.by_server):
            if self.hub.send_to_server(sid, "updateConfig", {"auth_token": p.server_auth_token(sid, new_key)}):
                count += 1
        return {"servers": count}

    # -- reads for the verbs ---------------------------------------------------------------------

    async def find(self, server_id: str) -> tuple[Server | None, bool]:
        """A server record (online, recently offline, or stored) and whether it is online."""
        if server_id in self.online:
            return self.online[server_id], True
        record = self.offline.get(server_id) or await self.store.get(server_id)
        return record, False

    async def latest_sample(self, server_id: str) -> dict[str, Any] | None:
        sample = self.metrics.latest(server_id)
        if sample is None:
            async with self.services.storage.read() as conn:
                sample = await get_record(conn, sample_key(server_id))
        return sample if isinstance(sample, dict) else None

    # -- changes from the verbs ------------------------------------------------------------------

    async def update_server(self, server_id: str, fields: dict[str, Any], *, actor: str, client: ClientInfo,
                            allowed: Callable[[list[str]], bool] = lambda groups: True) -> Server:
        """Shallow-merge fields; groups given → manual membership; autoGroup true → recomputed.

        Works on a copy and swaps it in only once ``allowed`` accepted the resulting groups, so a
        refused update changes nothing, online or stored.
        """
        current, online = await self.find(server_id)
        if current is None:
            raise FleetError("notfound", f"Server not found: {server_id}")
        record = copy.deepcopy(current)
        changes = {k: v for k, v in fields.items() if k not in LOCKED_FIELDS}
        if "groups" in changes and "autoGroup" not in changes:
            changes["autoGroup"] = False
        record.update(changes, modified=int(time.time()))
        assign_groups(record, self.services.list("groups").all())
        if not allowed(list(record["groups"])):
            raise FleetError("access", "You must keep at least one group you have access to.")
        record["keywords"] = keywords(record)
        snapshot = stored_copy(record)
        async with self.services.storage.transaction() as tx:
            await self.store.upsert(tx, snapshot, online=online)
            await self.services.activity.record(tx, "server_update", str(record.get("hostname")), client=client,
                                                username=actor, keywords=[server_id], server=_summary(snapshot))
        if online and server_id in self.online:
            self.online[server_id] = record
            if record["groups"] != current.get("groups"):
                self.send(server_id, "update", {"groups": list(record["groups"])})
        elif server_id in self.offline:
            self.offline[server_id] = record
        return record

    async def merge_server_data(self, server_id: str, data: dict[str, Any]) -> None:
        """A finished job's ``serverData`` joins its server's ``userData`` (job manager hook)."""
        current, _online = await self.find(server_id)
        if current is None:
            return
        merged = {**(current.get("userData") or {}), **data}
        await self.update_server(server_id, {"userData": merged}, actor="system", client=SYSTEM)

    async def delete_server(self, server_id: str, *, history: bool, actor: str, client: ClientInfo) -> None:
        """``delete_server`` (§1.4): online → uninstall (and delete on close with history)."""
        record = self.online.get(server_id)
        if record is not None:
            if history:
                record["delete"] = {"params": {"history": True}, "username": actor}
            self.send(server_id, "uninstall", {})
            await self._activity("server_delete", f"Uninstall requested: {record.get('hostname')}",
                                 [server_id, actor], server=_summary(record), username=actor)
            return
        if not history:
            raise FleetError("server", f"Server has gone offline: {server_id}")
        await self._delete_now(server_id, actor, self.offline.get(server_id) or {"id": server_id})

    async def _delete_now(self, server_id: str, actor: str, record: Server) -> None:
        self.offline.pop(server_id, None)
        self._dirty.pop(server_id, None)
        self.metrics.drop(server_id)
        async with self.services.storage.transaction() as tx:
            await self.store.delete(tx, server_id)
            name = record.get("hostname") or server_id
            await self.services.activity.record(tx, "server_delete", f"Server deleted: {name}",
                                                username=actor or None, keywords=[server_id],
                                                server=stored_copy({k: v for k, v in record.items() if k != "info"}))
