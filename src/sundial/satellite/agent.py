"""The satellite's side of the WebSocket channel (satellite-protocol.md §3-§4, §6).

One long-lived :class:`Agent` dials out to a conductor, authenticates, answers keepalives, reports
metrics, and runs the jobs it is given. The connection is disposable, the jobs are not: a job keeps
running when the socket drops, and the frames that carry its output and result wait in a bounded
outbox until the next ``joined``. Frames that only describe "now" (metrics, telemetry, echoes) are
dropped while offline, since a stale sample is worth less than the memory it would hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import time
from collections import deque
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from sundial import protocol as p
from sundial.satellite import VERSION
from sundial.satellite.config import ConfigStore, SatelliteConfig
from sundial.satellite.files import ConductorLink
from sundial.satellite.jobs import Job
from sundial.satellite.metrics import MetricsCollector, host_id

__all__ = ["Agent", "next_delay"]

log = logging.getLogger("sundial.satellite")

#: Outbox bound: job output queued while offline beyond this is dropped oldest-first (and said so).
MAX_OUTBOX_BYTES = 32 * 1024 * 1024
_PLUGIN_ID = re.compile(r"^[a-z0-9_]+$")


def next_delay(current: float, *, opened: bool, base: float, maximum: float) -> tuple[float, float]:
    """Back-off rule: return ``(sleep_now, next_current)``.

    A socket that opened resets the delay to ``base``; a dial that never opened waits the current
    delay and doubles it for next time, capped at ``maximum`` (1 s, 2 s, 4 s … 30 s by default).
    """
    if opened:
        return base, base
    return current, min(maximum, max(base, current * 2))


def _ssl_context(config: SatelliteConfig) -> ssl.SSLContext | None:
    if not config.secure:
        return None
    ctx = ssl.create_default_context()
    opts = config.get("socket_opts") or {}
    if isinstance(opts, dict) and opts.get("rejectUnauthorized") is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Outbox:
    """FIFO of encoded frames for an authenticated socket, bounded in bytes."""

    def __init__(self, limit: int = MAX_OUTBOX_BYTES) -> None:
        self.items: deque[tuple[str, str, bool]] = deque()
        self.size = 0
        self.limit = limit
        self.dropped = 0
        self.ready = asyncio.Event()
        self.empty = asyncio.Event()
        self.empty.set()

    def put(self, cmd: str, text: str, important: bool) -> None:
        self.items.append((cmd, text, important))
        self.size += len(text)
        while self.size > self.limit and self._drop_one_log():
            pass
        self.empty.clear()
        self.ready.set()

    def _drop_one_log(self) -> bool:
        for i, (cmd, text, _imp) in enumerate(self.items):
            if cmd == "job_log":
                del self.items[i]
                self.size -= len(text)
                self.dropped += 1
                return True
        return False

    def drop_unimportant(self) -> None:
        kept = deque(item for item in self.items if item[2])
        self.size = sum(len(t) for _c, t, _i in kept)
        self.items = kept
        if not kept:
            self.ready.clear()
            self.empty.set()

    def sent(self, item: tuple[str, str, bool]) -> None:
        """Forget a frame once written (it may already be gone if the bound dropped it meanwhile)."""
        for i, queued in enumerate(self.items):
            if queued is item:
                del self.items[i]
                self.size -= len(item[1])
                break
        if not self.items:
            self.ready.clear()
            self.empty.set()


class Agent:
    """The worker agent: connection loop, handlers, ticks and jobs."""

    def __init__(self, store: ConfigStore, *, metrics: MetricsCollector | None = None,
                 hostname: str | None = None, rng: random.Random | None = None) -> None:
        self.store = store
        self.metrics = metrics or MetricsCollector(VERSION)
        self.hostname = hostname or self.metrics.os_info()["hostname"]
        self.host_id = host_id(self.hostname)
        self.rng = rng or random.Random()
        self.outbox = _Outbox()
        self.jobs: dict[str, Job] = {}
        self._job_tasks: dict[str, asyncio.Task[None]] = {}
        self.groups: list[str] = []
        self.plugins: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.num_servers = 1
        self.features: dict[str, Any] = {}
        self._authed = asyncio.Event()
        self.auth_failed = False
        self.connected_host = ""
        self.connections = 0
        self.dial_attempts = 0
        self._ws: ClientConnection | None = None
        self._temp_host = ""
        self._last_ping = time.monotonic()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._shutting_down = False
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self._temp_dir: tuple[Path | None, str] = (None, "")

    # -- top level -------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`request_stop`; then abort jobs, deliver their results, disconnect."""
        self._prepare_dirs()
        ticks = [asyncio.create_task(self._second_loop()), asyncio.create_task(self._minute_loop())]
        conn = asyncio.create_task(self._connection_loop())
        await self._stop.wait()
        await self._shutdown_jobs()
        await self._drain_outbox(5.0)
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        for task in [*ticks, conn, *self._background]:
            task.cancel()
        await asyncio.gather(*ticks, conn, *self._background, return_exceptions=True)

    def request_stop(self) -> None:
        """Begin a graceful shutdown (signal handlers call this)."""
        self._stop.set()
        self._wake.set()

    @property
    def authed(self) -> bool:
        """True between ``joined`` and the socket closing: only then do queued frames flow."""
        return self._authed.is_set()

    @authed.setter
    def authed(self, value: bool) -> None:
        if value:
            self._authed.set()
        else:
            self._authed.clear()

    @property
    def config(self) -> SatelliteConfig:
        return self.store.config

    def _prepare_dirs(self) -> None:
        for path in (self.config.path("log_dir") / "jobs", self.config.path("temp_dir") / "plugins",
                     self.config.path("temp_dir") / "jobs"):
            path.mkdir(parents=True, exist_ok=True)

    # -- connection loop -------------------------------------------------------------------

    def pick_host(self) -> str:
        """``host`` always wins; else a pending redirect target once; else a random ``hosts`` entry."""
        static = str(self.config.get("host") or "")
        temp, self._temp_host = self._temp_host, ""
        if static:
            return static
        return temp or self.rng.choice(self.config.hosts)

    async def _connection_loop(self) -> None:
        delay = self.config.number("socket_reconnect_delay_sec")
        while not self._closing:
            if self.auth_failed:
                await self._wait_wake(None)
                continue
            opened = await self._connect_once(self.pick_host())
            if self._closing:
                return
            base = self.config.number("socket_reconnect_delay_sec")
            maximum = self.config.number("socket_reconnect_delay_max")
            pause, delay = next_delay(delay, opened=opened, base=base, maximum=maximum)
            if not self.auth_failed:
                await self._wait_wake(pause)

    async def _wait_wake(self, delay: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def _connect_once(self, host: str) -> bool:
        cfg = self.config
        url = p.websocket_url(host, cfg.port, cfg.secure)
        opened = False
        self.dial_attempts += 1
        try:
            async with connect(url, open_timeout=cfg.number("connect_timeout_sec"), ping_interval=None,
                               max_size=p.MAX_FRAME_BYTES, ssl=_ssl_context(cfg), proxy=None,
                               user_agent_header=f"SundialSatellite/{VERSION}") as ws:
                opened = True
                await self._session(ws, host)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
            log.info("connection to %s %s: %s", url, "lost" if opened else "failed", exc or type(exc).__name__)
        return opened

    async def _session(self, ws: ClientConnection, host: str) -> None:
        self._ws, self.connected_host, self.authed = ws, host, False
        self._last_ping = time.monotonic()
        self.connections += 1
        writer = asyncio.create_task(self._writer(ws))
        try:
            await self._send_now(ws, "hello", self._hello_data())
            async for raw in ws:
                await self._handle_raw(ws, raw)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._on_disconnect()

    def _on_disconnect(self) -> None:
        was_authed, self.authed, self._ws = self.authed, False, None
        self.outbox.drop_unimportant()
        if was_authed and not self._closing:
            for job in self.jobs.values():
                job.meta("Lost connection to conductor")

    def _hello_data(self) -> dict[str, Any]:
        initial = self.config.get("initial")
        data: dict[str, Any] = dict(initial) if isinstance(initial, dict) else {}
        data.update(hostname=self.hostname, id=self.config.server_id,
                    info=self.metrics.host_info(quickmon_enabled=bool(self.config.get("quickmon_enabled"))))
        return data

    async def _send_now(self, ws: ClientConnection, cmd: str, data: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(p.encode_frame(cmd, data))

    async def _writer(self, ws: ClientConnection) -> None:
        """Send queued frames in order, only while authenticated; pop each only once it is sent."""
        while True:
            await self._authed.wait()
            if not self.outbox.items:
                self.outbox.ready.clear()
                await self.outbox.ready.wait()
                continue
            item = self.outbox.items[0]
            await ws.send(item[1])
            self.outbox.sent(item)

    def emit(self, cmd: str, data: dict[str, Any], important: bool = False) -> None:
        """Queue a frame; unimportant ones are dropped unless an authenticated socket is up."""
        if not important and not self.authed:
            return
        self.outbox.put(cmd, p.encode_frame(cmd, data), important)

    async def _drain_outbox(self, limit: float) -> None:
        """Give queued results a bounded chance to leave before the socket is closed."""
        if self.authed and self.outbox.items:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.empty.wait(), limit)

    # -- incoming --------------------------------------------------------------------------

    async def _handle_raw(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            msg = p.decode_conductor_message(raw)
        except p.FrameError as exc:
            log.warning("dropped frame from conductor: %s", exc)
            return
        if msg is None:
            return
        if not self.authed and not isinstance(msg, _PRE_AUTH):
            return
        handler = getattr(self, f"_on_{type(msg).__name__}", None)
        if handler is None:
            return
        try:
            await handler(ws, msg)
        except ConnectionClosed:
            raise
        except Exception:  # one bad message must not end the connection loop
            log.exception("error while handling '%s' from the conductor", type(msg).cmd)

    async def _on_ConductorHello(self, ws: ClientConnection, msg: p.ConductorHello) -> None:  # noqa: N802
        if not self.config.server_id and msg.id:
            self.store.save({"server_id": msg.id})
        token = self.config.auth_token or p.nonce_token(msg.nonce, self.config.secret_key)
        await self._send_now(ws, "join", {"token": token})

    async def _on_Joined(self, ws: ClientConnection, msg: p.Joined) -> None:  # noqa: N802
        pushed = dict(msg.config)
        if msg.masterData is not None and msg.masterData.masters:
            pushed["hosts"] = list(msg.masterData.masters)
        self._apply_pushed(pushed)
        self.groups, self.num_servers, self.features = list(msg.groups), max(1, msg.numServers), dict(msg.features)
        self._set_plugins(msg.plugins, msg.commands)
        self.authed = True
        log.info("joined conductor %s as %s", self.connected_host, self.config.server_id)
        self._report_startup_logs()
        if self.jobs:
            self._announce_reconnect()
        else:
            self._spawn(self._send_monitor(stagger=False))
        self.outbox.ready.set()

    async def _on_AuthFailure(self, ws: ClientConnection, msg: p.AuthFailure) -> None:  # noqa: N802
        log.error("conductor refused authentication: %s (waiting for a config change)", msg.description)
        self.auth_failed = True
        await ws.close()

    async def _on_Redirect(self, ws: ClientConnection, msg: p.Redirect) -> None:  # noqa: N802
        log.info("redirected to primary conductor %s", msg.host)
        self._temp_host = msg.host
        await ws.close()

    async def _on_Retry(self, ws: ClientConnection, msg: p.Retry) -> None:  # noqa: N802
        await ws.close()

    async def _on_Echo(self, ws: ClientConnection, msg: p.Echo) -> None:  # noqa: N802
        self._last_ping = time.monotonic()
        await self._send_now(ws, "echoback", msg.model_dump(exclude_unset=True))

    async def _on_MasterData(self, ws: ClientConnection, msg: p.MasterData) -> None:  # noqa: N802
        if msg.masters:
            self._apply_pushed({"hosts": list(msg.masters)})

    async def _on_UpdateConfig(self, ws: ClientConnection, msg: p.UpdateConfig) -> None:  # noqa: N802
        self._apply_pushed(msg.model_dump())

    async def _on_Update(self, ws: ClientConnection, msg: p.Update) -> None:  # noqa: N802
        if msg.groups is not None:
            self.groups = list(msg.groups)
        if msg.plugins is not None or msg.commands is not None:
            self._set_plugins(msg.plugins if msg.plugins is not None else self.plugins,
                              msg.commands if msg.commands is not None else self.commands)

    async def _on_LaunchJob(self, ws: ClientConnection, msg: p.LaunchJob) -> None:  # noqa: N802
        self.launch(msg)

    async def _on_AbortJob(self, ws: ClientConnection, msg: p.AbortJob) -> None:  # noqa: N802
        job = self.jobs.get(msg.id)
        if job is not None:
            await job.abort(msg.reason)

    async def _on_Upgrade(self, ws: ClientConnection, msg: p.Upgrade) -> None:  # noqa: N802
        self.emit("warning", {"description": f"Self-upgrade is not supported by Sundial satellite {VERSION} "
                              f"on {self.hostname}; upgrade the package instead."})

    async def _on_Uninstall(self, ws: ClientConnection, msg: p.Uninstall) -> None:  # noqa: N802
        self.emit("warning", {"description": f"Remote uninstall is not supported by Sundial satellite "
                              f"{VERSION} on {self.hostname}."})

    async def _on_TestMonitorPlugin(self, ws: ClientConnection, msg: p.TestMonitorPlugin) -> None:  # noqa: N802
        self.emit("monitorPluginTestResult", {"plugin_id": msg.plugin_id, "request_id": msg.request_id,
                                              "result": "Error: monitor plugins are not supported by this "
                                              "satellite version yet.", "stderr": ""})

    # -- state from the conductor ------------------------------------------------------------

    def _apply_pushed(self, pushed: dict[str, Any]) -> None:
        """Persist pushed keys that differ from what we have (no file rewrite on every reconnect)."""
        current = self.config.as_dict()
        changed = {k: v for k, v in pushed.items() if current.get(k) != v}
        if changed:
            keys = self.store.apply_pushed(changed)
            if keys:
                log.info("config updated by conductor: %s", ", ".join(sorted(keys)))

    def _set_plugins(self, plugins: list[dict[str, Any]], commands: list[dict[str, Any]]) -> None:
        self.plugins, self.commands = list(plugins), list(commands)
        plugin_dir = self.config.path("temp_dir") / "plugins"
        for plugin in self.plugins:
            pid, script = plugin.get("id"), plugin.get("script")
            if isinstance(pid, str) and _PLUGIN_ID.match(pid) and pid not in p.BAD_KEYS and isinstance(script, str):
                _write_script(plugin_dir / pid, script)

    def _report_startup_logs(self) -> None:
        logs = self.config.path("log_dir")
        for name, cmd, what in (("background.log", "notice", "Upgrade completed"),
                                ("crash.log", "critical", "Crash log found")):
            path = logs / name
            with contextlib.suppress(OSError):
                text = path.read_text(encoding="utf-8", errors="replace")[-65536:]
                self.emit(cmd, {"description": f"{what} on worker server: {self.hostname}",
                                "details": f"```\n{text}\n```"}, True)
                path.unlink()

    def _announce_reconnect(self) -> None:
        now = time.time()
        for job in self.jobs.values():
            if job.finished:
                continue
            job.job["reconnected"] = now
            job.meta("Reconnected to conductor")
            self.emit("jobs", {job.id: job.snapshot()}, True)

    # -- jobs ------------------------------------------------------------------------------

    def launch(self, msg: p.LaunchJob) -> None:
        """Start a job, unless it is already running here or the agent is going down."""
        job_id = msg.job.id
        if job_id in self.jobs:
            log.warning("ignoring a second launch of job %s", job_id)
            return
        job = self._make_job(msg)
        if self._shutting_down:
            job.meta("Server is shutting down.")
            job._finish(1, "Setup Error: Server is shutting down, cannot launch job.")
            return
        self.jobs[job_id] = job
        task = asyncio.create_task(self._run_job(job))
        self._job_tasks[job_id] = task

    def _make_job(self, msg: p.LaunchJob) -> Job:
        cfg = self.config
        conductor = p.base_url(self.connected_host or self.pick_host(), cfg.port, cfg.secure)
        extra = {"base_url": conductor, "socket_opts": cfg.get("socket_opts"),
                 "temp_dir": self._absolute_temp_dir(), "airgap": cfg.get("airgap")}
        if msg.job.runner and cfg.auth_token:
            extra["auth_token"] = p.job_token(msg.job.id, cfg.auth_token)
        return Job(msg, emit=self.emit, temp_dir=cfg.path("temp_dir"), log_dir=cfg.path("log_dir"),
                   base_url=conductor, kill_timeout=cfg.number("child_kill_timeout"),
                   job_env=cfg.get("job_env") or {}, version=VERSION, extra_doc=extra,
                   link=_conductor_link(cfg, conductor), legacy=bool(cfg.get("cronicle")))

    def _absolute_temp_dir(self) -> str:
        """The resolved ``temp_dir``, cached per configured value (resolving costs a few system
        calls per path component, on every launch)."""
        configured = self.config.path("temp_dir")
        if self._temp_dir[0] != configured:
            self._temp_dir = (configured, str(configured.resolve()))
        return self._temp_dir[1]

    async def _run_job(self, job: Job) -> None:
        try:
            await job.run()
        except Exception:  # a bug in job handling must not take the agent down
            log.exception("job %s failed inside the agent", job.id)
            job._finish(1, "Satellite internal error while running the job.")
        finally:
            self.jobs.pop(job.id, None)
            self._job_tasks.pop(job.id, None)

    async def _shutdown_jobs(self) -> None:
        self._shutting_down = True
        for job in list(self.jobs.values()):
            await job.abort("Server is shutting down.")
        while self._job_tasks:
            await asyncio.gather(*list(self._job_tasks.values()), return_exceptions=True)

    def _job_frame(self) -> dict[str, Any]:
        frame = {}
        for job in self.jobs.values():
            update = job.take_update(telemetry=True)
            if update:
                frame[job.id] = update
        return frame

    # -- ticks -----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _second_loop(self) -> None:
        busy: dict[str, asyncio.Task[Any]] = {}
        while True:
            await asyncio.sleep(1.0 - (time.time() % 1.0))
            self._check_config()
            await self._check_ping()
            if not self.authed:
                continue
            frame = self._job_frame()
            if frame:
                self.emit("jobs", frame)
            if self._quickmon_on() and (busy.get("q") is None or busy["q"].done()):
                busy["q"] = asyncio.create_task(self._send_quickmon())

    def _quickmon_on(self) -> bool:
        return bool(self.config.get("monitoring_enabled")) and bool(self.config.get("quickmon_enabled"))

    def _check_config(self) -> None:
        try:
            changed = self.store.reload_if_changed()
        except Exception as exc:  # a half-edited file must not kill the agent
            log.warning("config reload failed: %s", exc)
            return
        if changed:
            log.info("config file changed; reloaded")
            self.auth_failed = False
            self._wake.set()

    async def _check_ping(self) -> None:
        ws = self._ws
        if ws is None:
            return
        if time.monotonic() - self._last_ping > self.config.number("ping_timeout_sec"):
            log.warning("no echo from conductor for %ss; reconnecting", self.config.get("ping_timeout_sec"))
            self._last_ping = time.monotonic()
            await ws.close()

    async def _send_quickmon(self) -> None:
        await asyncio.sleep((self.host_id % max(1, min(self.num_servers, 1000))) / 1000.0)
        sample = await asyncio.to_thread(self.metrics.quick_sample)
        self.emit("quickmon", sample)

    async def _minute_loop(self) -> None:
        while True:
            await asyncio.sleep(60.0 - (time.time() % 60.0))
            if self.authed:
                self._spawn(self._send_monitor(stagger=True))

    async def _send_monitor(self, *, stagger: bool) -> None:
        """Collect off the event loop, after the host's stagger so a fleet does not report at once."""
        if stagger:
            spread = max(1, min(self.num_servers, 1000)) * 29
            await asyncio.sleep((1000 + self.host_id % spread) / 1000.0)
        job_pids = {int(pid): job.id for job in self.jobs.values() for pid in (job.job.get("procs") or {})}
        payload = await asyncio.to_thread(
            self.metrics.monitor_payload, server_id=self.config.server_id, jobs=len(self.jobs),
            monitoring_enabled=bool(self.config.get("monitoring_enabled")), job_pids=job_pids)
        self.emit("monitor", payload)


def _conductor_link(cfg: SatelliteConfig, conductor: str) -> ConductorLink:
    """File transfers use the socket's TLS choice and the ``http_file_opts`` timeouts (milliseconds,
    xySat's keys) and retries."""
    opts = cfg.get("socket_opts")
    verify = not (isinstance(opts, dict) and opts.get("rejectUnauthorized") is False)
    files = cfg.get("http_file_opts")
    files = files if isinstance(files, dict) else {}
    limits = {key: float(files[name]) / 1000 for key, name in
              (("timeout", "timeout"), ("idle_timeout", "idleTimeout"), ("connect_timeout", "connectTimeout"))
              if isinstance(files.get(name), int | float) and files[name] > 0}
    retries = files.get("retries")
    return ConductorLink(base_url=conductor, verify=verify, server_id=cfg.server_id, auth_token=cfg.auth_token,
                         secret_key=cfg.secret_key, retries=int(retries) if isinstance(retries, int) else 8, **limits)


_PRE_AUTH = (p.ConductorHello, p.Joined, p.AuthFailure, p.Redirect, p.Retry, p.Echo)


def _write_script(path: Path, script: str) -> None:
    """Write a plugin script only when it changed (jobs may be executing the current one)."""
    data = script.replace("\r\n", "\n")
    with contextlib.suppress(OSError):
        if path.is_file() and path.read_text(encoding="utf-8", errors="replace") == data:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(data, encoding="utf-8")
        tmp.chmod(0o775)
        tmp.replace(path)
