"""Builds the conductor: wires the services, starts and stops them in a known order.

Kept deliberately small: each domain owns its logic; this file only connects them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import URLPath
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from sundial import __version__
from sundial.actions.daily import DailyCounters
from sundial.actions.service import ActionService
from sundial.activity import ActivityLog
from sundial.api import (
    admin,
    apikeys,
    channels,
    events,
    files,
    jobs,
    jobtools,
    magic,
    maintenance,
    misc,
    objects,
    plugins,
    recovery,
    stream,
    system,
    uploads,
    users,
    webhooks,
    webstatus,
)
from sundial.api import scheduler as scheduler_verbs
from sundial.api import secrets as secret_verbs
from sundial.api import servers as server_verbs
from sundial.api.dispatch import ApiFront, Dispatcher
from sundial.api.live import LiveEndpoint
from sundial.api.registry import Registry, VerbRouter, openapi_document
from sundial.auth.accounts import Accounts
from sundial.auth.apikeys import ApiKeyService
from sundial.auth.users import UserService
from sundial.config import Config
from sundial.confwatch import ConfigWatcher
from sundial.events.service import EventService
from sundial.fleet.service import FleetService
from sundial.internal_jobs import InternalJobs
from sundial.jobs.launch import Launcher
from sundial.jobs.logs import JobLogs
from sundial.jobs.manager import JobManager
from sundial.jobs.store import JobStore
from sundial.logs import LogManager
from sundial.maintenance import MaintenanceService
from sundial.objects import ObjectStore
from sundial.scheduler.service import SchedulerService
from sundial.seed import recover_admin, seed_first_start
from sundial.services import Services
from sundial.state import StateService
from sundial.storage.engine import Storage, database_url
from sundial.storage.lists import ConfigList, load_all
from sundial.storage.migrate import migrate
from sundial.storage.schema import CONFIG_LISTS
from sundial.vault.rotation import Quiescer, Rotations
from sundial.vault.service import VaultService

ROUTERS: list[VerbRouter] = [misc.router, files.router, users.router, recovery.router, apikeys.router, objects.router,
                             plugins.router,
                             events.router, jobs.router, system.router, webhooks.router, channels.router,
                             secret_verbs.router, maintenance.router, scheduler_verbs.router,
                             server_verbs.router, admin.router, jobtools.router, uploads.router, magic.router,
                             stream.router]


def host_id(config: Config) -> str:
    return str(config.get("hostname") or socket.gethostname()).lower()


def make_log_manager(config: Config, echo: bool = False) -> LogManager:
    return LogManager(config.path("log_dir"), columns=list(config.get("log_columns")),
                      filename=str(config.get("log_filename")),
                      debug_level=int(config.get("debug_level")), hostname=host_id(config), echo=echo)


def make_storage(config: Config) -> Storage:
    url = database_url(str(config.get("Storage.url") or ""), config.path("Storage.sqlite_file"))
    return Storage(url, schema=config.get("Storage.schema") or None,
                   pool_size=int(config.get("Storage.pool_size", 5)))


def build_job_manager(config: Config, logs: LogManager, storage: Storage,
                      lists: dict[str, ConfigList]) -> JobManager:
    job_logs = JobLogs(config.path("log_dir") / "jobs", config.path("Storage.sqlite_file").parent / "jobs")
    return JobManager(JobStore(storage, logs.logger("Job")), job_logs, logs.logger("Job"),
                      dead_job_timeout=float(config.get("dead_job_timeout")),
                      inline_log_limit=int(config.get("max_inline_job_log_size")),
                      known_tags=lambda: {t["id"] for t in lists["tags"].all()}, group_of=lists["groups"].get,
                      ebrake_per_min=int(config.get("max_jobs_per_min")))


def build_services(config: Config, logs: LogManager) -> Services:
    storage = make_storage(config)
    lists = {name: ConfigList(storage, name) for name in CONFIG_LISTS}
    activity = ActivityLog(storage, logs.logger("Transaction"))
    user_service = UserService(storage, config)
    objects_store = ObjectStore(storage, activity)
    jobs = build_job_manager(config, logs, storage, lists)
    jobs.daily = daily = DailyCounters(storage)
    state = StateService(storage)
    vault = VaultService(config, storage, lists["secrets"], activity, use_log=logs.logger("Secret"),
                         log=logs.logger("Vault"))
    internal_jobs = InternalJobs(storage, activity, logs.logger("Sundial"))
    quiescer = Quiescer(state, jobs, storage, activity, drain_timeout=float(config.get("dead_job_timeout")))
    services = Services(
        config=config, logs=logs, storage=storage, lists=lists, users=user_service,
        accounts=Accounts(user_service, activity, lists["roles"]),
        api_keys=ApiKeyService(lists["api_keys"]), activity=activity,
        objects=objects_store, state=state,
        events=EventService(objects_store, lists), jobs=jobs,
        launcher=Launcher(jobs, lists, config),
        vault=vault, internal_jobs=internal_jobs,
        rotations=Rotations(vault, internal_jobs, quiescer, logs.logger("Vault")), daily=daily,
        hostname=host_id(config), started=time.time(), live=jobs.live.bus)
    jobs.secrets_for = lambda job: vault.job_secrets(job, jobs.get_active)
    services.actions = ActionService(services)  # registers the job action runner
    services.actions.set_secret_source(vault.web_hook_secrets)
    services.scheduler = SchedulerService(
        config=config, storage=storage, lists=lists, state=state, launcher=services.launcher, jobs=jobs,
        activity=activity, log=logs.logger("Scheduler"), is_primary=lambda: services.is_primary(),
        plugin_secrets=lambda plugin_id: vault.secrets_for("plugins", plugin_id))
    services.events.state_store = services.scheduler  # update_state ("time machine") edits its rows
    _test_only_not_primary(services)
    services.fleet = FleetService(services)
    jobs.fleet = services.fleet  # jobs dispatch to satellites through the hub
    return services


def _test_only_not_primary(services: Services) -> None:
    """`testing.not_primary`: act as a backup conductor (redirect satellites to
    `testing.primary_host`, or tell them to retry). Only for tests of the redirect path until
    the cluster lease exists."""
    if services.config.get("testing.not_primary"):
        services.is_primary = lambda: False
        services.extras["primary_host"] = str(services.config.get("testing.primary_host") or "")


async def load_services(services: Services) -> None:
    """Bring the schema up to date and load every in-memory list."""
    await services.storage.prepare()
    before, after = await migrate(services.storage)
    if before != after:
        services.logger("Storage").debug(2, f"Database schema migrated from {before or 'empty'} to {after}")
    await load_all(services.storage, services.lists.values())
    await services.users.load()
    await services.state.load()


class Conductor:
    """One conductor process: services plus the ASGI application that serves them."""

    def __init__(self, config: Config, logs: LogManager) -> None:
        self.config = config
        self.logs = logs
        self.log = logs.logger("Sundial")
        self.services = build_services(config, logs)
        self.registry = Registry(ROUTERS)
        self._tasks: list[asyncio.Task[Any]] = []
        self._prepared = False
        self.live = LiveEndpoint(self.services)  # users' WebSocket: /api/live
        self.config_watcher = ConfigWatcher(config, self.log, self.apply_config)

    async def prepare(self) -> None:
        """Storage and the secret key check; a wrong key raises (ConfigError) before any port opens."""
        if not self._prepared:
            await load_services(self.services)
            await self.services.vault.open()
            self._prepared = True

    async def start(self) -> None:
        await self.prepare()
        await seed_first_start(self.services)
        if self.config.get("recover_admin"):
            await recover_admin(self.services, str(self.config.get("recover_admin")))
        self.services.events.active_count = lambda eid: len(self.services.jobs.active_for_event(eid))
        self.services.jobs.event_changer = self.services.events.apply_job_changes
        self.services.events.on_refused = lambda eid, why: self.log.error(
            "event", f"A job's change to event {eid} was refused: {why}")
        await self.services.jobs.start()
        if self.services.fleet is not None:
            await self.services.fleet.start()
        if self.services.scheduler is not None:
            await self.services.scheduler.start()
        self.services.maintenance = MaintenanceService(self.services)  # daily upkeep and the midnight log archive
        self.services.maintenance.start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_soon)
        self.config_watcher.start()
        self.log.debug(1, f"Sundial {__version__} conductor started on port "
                          f"{self.config.get('WebServer.port')}", {"pid": __import__('os').getpid()})

    def reload_soon(self) -> None:
        """SIGHUP: re-read the config files, and users and lists the CLI may have changed in the database."""
        self._tasks.append(asyncio.create_task(self.reload()))

    async def reload(self) -> None:
        await self.config_watcher.reload("SIGHUP")
        await load_all(self.services.storage, self.services.lists.values())
        await self.services.users.load()
        await self.services.vault.reload()
        self.log.debug(2, "Reloaded users and lists from the database (SIGHUP)")

    def apply_config(self, changed: list[str]) -> None:
        """Refresh the few settings services copied at start; the rest is read at use."""
        config, services = self.config, self.services
        self.logs.debug_level = int(config.get("debug_level"))
        jobs = services.jobs
        jobs.dead_job_timeout = float(config.get("dead_job_timeout"))
        jobs.inline_log_limit = int(config.get("max_inline_job_log_size"))
        jobs.ebrake_per_min = int(config.get("max_jobs_per_min"))
        if services.actions is not None:
            services.actions.refresh_site()

    async def stop(self) -> None:
        await self.config_watcher.stop()
        await self.live.close_all()
        if self.services.scheduler is not None:
            await self.services.scheduler.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.services.maintenance is not None:
            await self.services.maintenance.stop()
        await self.services.internal_jobs.stop()
        if self.services.fleet is not None:
            await self.services.fleet.stop()
        await self.services.vault.close()
        await self.services.jobs.stop()
        if self.services.actions is not None:
            await self.services.actions.aclose()
        await self.services.storage.close()
        self.log.debug(1, "Conductor stopped")

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def asgi(self) -> ApiFront:
        dispatcher = Dispatcher(self.services, self.registry)
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
        routes = [
            *([WebSocketRoute("/", self.services.fleet.hub.endpoint)] if self.services.fleet else []),
            WebSocketRoute("/api/live", self.live.endpoint),
            Route("/api/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/maintenance/rotate-key", maintenance.rotate_key_endpoint(self.services), methods=["POST"]),
            Route("/api/{ns:str}/{name:str}", _name_guard(dispatcher), methods=methods),
            Route("/api/{ns:str}/{name:str}/{rest:path}", _name_guard(dispatcher), methods=methods),
            Route("/health", self.health, methods=["GET", "HEAD"]),
            Route("/server-status", webstatus.server_status_endpoint(self.services), methods=["GET"]),
            Route("/files/{key:path}", files.files_endpoint(self.config), methods=["GET", "HEAD"]),
            LazyWebRoutes(self.services),  # the web UI's pages and /static
        ]
        app = Starlette(routes=routes, lifespan=self.lifespan, middleware=[Middleware(CorsPreflight)])
        return ApiFront(dispatcher, app)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.registry, __version__))

    async def health(self, request: Request) -> Response:
        primary = self.services.is_primary()
        return JSONResponse({"code": 0 if primary else "master", "master": primary},
                            status_code=200 if primary else 503)


def _name_guard(dispatcher: Dispatcher) -> Any:
    """Only `[A-Za-z0-9_]` of the verb name counts, as in xyOps routing."""

    async def endpoint(request: Request) -> Response:
        match = re.match(r"\w+", request.path_params["name"])
        request.path_params["name"] = match.group(0) if match else ""
        return await dispatcher(request)

    return endpoint


class LazyWebRoutes(BaseRoute):
    """The web UI's routes, imported and built when the first request gets this far.

    Why: the pages, Jinja2 and the compiled templates cost several MiB and tens of
    milliseconds at start, and many conductors (API-only, driven by automation) never serve a
    page. Matching delegates route by route, so the router answers exactly as if the page
    routes were listed here (full and partial matches, 405s, slash redirects, 404s).
    """

    _KEY = "sundial.web_route"

    def __init__(self, services: Services) -> None:
        self.services = services
        self._routes: list[BaseRoute] | None = None

    @property
    def routes(self) -> list[BaseRoute]:
        if self._routes is None:
            from sundial.web.routes import web_routes

            self._routes = web_routes(self.services)
        return self._routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        partial: tuple[Match, Scope] | None = None
        for index, route in enumerate(self.routes):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, self._KEY: index}
            if match is Match.PARTIAL and partial is None:
                partial = match, {**child, self._KEY: index}
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.routes[scope[self._KEY]].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


class CorsPreflight:
    """Answer `OPTIONS` preflights the way xyOps does (echo origin and requested headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        response = Response(status_code=200, headers={
            "Access-Control-Allow-Origin": headers.get("origin", "*"),
            "Access-Control-Allow-Methods": "POST, GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": headers.get("access-control-request-headers", "*"),
            "Access-Control-Max-Age": "1728000",
        })
        await response(scope, receive, send)
