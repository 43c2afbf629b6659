"""Server verbs (servers-groups-monitoring.md §1.3, §3.3, §4) and the satellite install endpoints
(satellite-protocol.md §2): parse, check access, call the fleet service, shape the xyOps response.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from pydantic import Field
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from sundial import __version__
from sundial.api.call import Call
from sundial.api.dispatch import principal_for
from sundial.api.errors import ApiError
from sundial.api.params import Flag, Icon, ObjectId, Params, SearchLimit, StrList, Title
from sundial.api.registry import ADMIN, TOKEN, USER, VerbRouter
from sundial.api.stats import cpu_percent, rss_bytes
from sundial.fleet.install import InstallDenied, install_script, request_base_url, token_base_url, upgrade_script
from sundial.fleet.metrics import SYSTEMS
from sundial.fleet.records import Server
from sundial.fleet.service import FleetError, FleetService
from sundial.internal_jobs import InternalJobHandle
from sundial.storage.search import MAX_QUERY_LENGTH, QueryError

router = VerbRouter()
_bundle_lock = asyncio.Lock()


def fleet(call: Call) -> FleetService:
    service = call.services.fleet
    if service is None:
        raise ApiError("server", "The fleet service is not running.")
    return service


def visible(call: Call, server: Server) -> bool:
    """Group-limited users see servers in at least one of their groups."""
    user = call.user
    if user.is_admin or not user.groups:
        return True
    return any(g in user.groups for g in server.get("groups") or [])


def require_visible(call: Call, server: Server) -> None:
    if not visible(call, server):
        raise ApiError("access", f"You do not have the required account privileges to access server {server['id']}.")


def _public(server: Server) -> Server:
    return {k: v for k, v in server.items() if k != "delete"}


class ServerIdParams(Params):
    id: ObjectId


@router.verb("get_active_servers", auth=USER)
async def get_active_servers(call: Call, p: Params) -> dict[str, Any]:
    """Online servers visible to the caller."""
    rows = [_public(s) for s in fleet(call).online_servers() if visible(call, s)]
    return {"code": 0, "rows": rows, "list": {"length": len(rows)}}


@router.verb("get_active_server", ServerIdParams, auth=USER)
async def get_active_server(call: Call, p: ServerIdParams) -> dict[str, Any]:
    """One online server."""
    server = fleet(call).online.get(p.id)
    if server is None:
        raise ApiError("notfound", f"Failed to locate server: {p.id}")
    require_visible(call, server)
    return {"code": 0, "server": _public(server)}


@router.verb("get_servers", auth=USER)
async def get_servers(call: Call, p: Params) -> dict[str, Any]:
    """Online servers keyed by id, and the conductors."""
    service = fleet(call)
    servers = {s["id"]: _public(s) for s in service.online_servers() if visible(call, s)}
    masters = {host: _master_row(call, service, host) for host in service.masters()}
    return {"code": 0, "servers": servers, "masters": masters}


def _master_row(call: Call, service: FleetService, host: str) -> dict[str, Any]:
    """One conductor as `get_servers` lists it (`{id, online, master, date, version, ping, stats}`)."""
    me = host == service.host_id()
    stats = {"mem": rss_bytes(), "cpu": cpu_percent()} if me else {}
    return {"id": host, "online": True, "master": me and call.services.is_primary(), "date": time.time(),
            "version": __version__ if me else "", "ping": 0, "stats": stats}


@router.verb("get_server", ServerIdParams, auth=USER)
async def get_server(call: Call, p: ServerIdParams) -> dict[str, Any]:
    """A server (online, recently offline or stored) with its latest minute sample."""
    service = fleet(call)
    data = await service.latest_sample(p.id)
    if data is None:
        raise ApiError("notfound", f"Failed to load server data: {p.id}: no monitoring sample received yet")
    server, online = await service.find(p.id)
    if server is None:
        raise ApiError("notfound", f"Server not found: {p.id}")
    require_visible(call, server)
    return {"code": 0, "server": _public(server), "data": data, "online": online}


class UpdateServerParams(ServerIdParams):
    title: Title | None = None
    icon: Icon | None = None
    enabled: Flag | None = None
    groups: StrList | None = None
    autoGroup: Flag | None = None  # noqa: N815 (xyOps field name)
    maxJobs: int | None = Field(default=None, ge=0)  # noqa: N815
    userData: dict[str, Any] | None = None  # noqa: N815


@router.verb("update_server", UpdateServerParams, privilege="update_servers")
async def update_server(call: Call, p: UpdateServerParams) -> dict[str, Any]:
    """Change a server's title, icon, enabled flag, groups, job cap or user data."""
    service = fleet(call)
    current, _online = await service.find(p.id)
    if current is None:  # an update of a missing id answers the object-type code (core-api.md §8.4)
        raise ApiError("server", f"Failed to update server: Server not found: {p.id}")
    require_visible(call, current)
    fields = p.fields_set()
    fields.pop("id")
    for key in ("enabled", "autoGroup"):
        if key in fields:
            fields[key] = bool(fields[key])
    user = call.user
    try:
        server = await service.update_server(
            p.id, fields, actor=user.actor, client=call.client,
            allowed=lambda groups: user.is_admin or not user.groups or any(g in user.groups for g in groups))
    except FleetError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0, "server": _public(server)}


class ServerDataParams(ServerIdParams):
    data: dict[str, Any] | None = None
    userData: dict[str, Any] | None = None  # noqa: N815 (xyOps alias of data)
    replace: Flag | None = None


@router.verb("update_server_data", ServerDataParams, privilege="update_servers")
async def update_server_data(call: Call, p: ServerDataParams) -> dict[str, Any]:
    """Merge (or with ``replace``, set) a server's ``userData``, handed to its jobs as ``serverData``."""
    service = fleet(call)
    current, _online = await service.find(p.id)
    if current is None:
        raise ApiError("server", f"Failed to update server data: Server not found: {p.id}")
    require_visible(call, current)
    incoming = p.data if p.data is not None else p.userData
    if incoming is None:
        raise ApiError("api", "Missing parameter: data")
    merged = dict(incoming) if p.replace else {**(current.get("userData") or {}), **incoming}
    try:
        server = await service.update_server(p.id, {"userData": merged}, actor=call.user.actor, client=call.client)
    except FleetError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0, "data": server["userData"]}


class DeleteServerParams(ServerIdParams):
    history: Flag | None = None


@router.verb("delete_server", DeleteServerParams, auth=ADMIN)
async def delete_server(call: Call, p: DeleteServerParams) -> dict[str, Any]:
    """Decommission a server: uninstall it when online; delete its record (and history) with ``history``."""
    try:
        await fleet(call).delete_server(p.id, history=bool(p.history), actor=call.user.actor, client=call.client)
    except FleetError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0}


class SearchServersParams(Params):
    query: str = Field(default="*", max_length=MAX_QUERY_LENGTH)
    offset: int = Field(default=0, ge=0)
    limit: SearchLimit = Field(default=1, ge=1, le=1000)  # every search_* pages 1 row by default (core-api §4)
    sort_by: str = Field(default="_id", max_length=64)
    sort_dir: int = -1


@router.verb("search_servers", SearchServersParams, auth=USER)
async def search_servers(call: Call, p: SearchServersParams) -> dict[str, Any]:
    """Every server ever seen (online or not): ``keywords``, ``groups``, ``os_*``, ``cpu_*``, dates."""
    user = call.user
    limit_groups = [] if user.is_admin else list(user.groups)
    try:
        rows, total = await fleet(call).store.search(p.query or "*", offset=p.offset, limit=p.limit,
                                                     sort_dir=p.sort_dir, groups=limit_groups)
    except QueryError as exc:
        raise ApiError("api", str(exc)) from None
    return {"code": 0, "rows": rows, "list": {"length": total}}


@router.verb("get_server_summaries", auth=USER)
async def get_server_summaries(call: Call, p: Params) -> dict[str, Any]:
    """Value counts of ``os_platform``, ``os_distro``, ``os_release``, ``os_arch``, ``cpu_virt``,
    ``cpu_brand`` and ``cpu_cores`` over every server ever seen (the search page's pickers)."""
    return {"code": 0, "summaries": await fleet(call).store.summaries()}


class QuickmonParams(Params):
    server: ObjectId | None = None
    group: ObjectId | None = None


@router.verb("get_quickmon_data", QuickmonParams, auth=USER)
async def get_quickmon_data(call: Call, p: QuickmonParams) -> dict[str, Any]:
    """Per-second samples (the last minute) of one server, one group, or every visible server."""
    service = fleet(call)
    servers = [s for s in service.online_servers() if visible(call, s)
               and (p.server is None or s["id"] == p.server)
               and (p.group is None or p.group in (s.get("groups") or []))]
    return {"code": 0, "servers": {s["id"]: service.metrics.quick_rows(s["id"]) for s in servers}}


class MonitorDataParams(Params):
    server: ObjectId
    sys: str = Field(default="hourly", max_length=64)
    limit: int = Field(default=60, ge=1, le=10000)


class HistoryParams(Params):
    server: ObjectId
    sys: str = Field(max_length=64)
    date: int = Field(ge=0)
    limit: int = Field(ge=1, le=10000)


async def _monitored_server(call: Call, server_id: str, system: str) -> Server:
    """The (visible) server whose timelines are asked for; xyOps words an unknown system first."""
    if system not in SYSTEMS:
        raise ApiError("monitor", f"Unknown system: {system}")
    server, _online = await fleet(call).find(server_id)
    if server is None:
        raise ApiError("monitor", f"Failed to load server data: {server_id}")
    require_visible(call, server)
    return server


@router.verb("get_latest_monitor_data", MonitorDataParams, auth=USER)
async def get_latest_monitor_data(call: Call, p: MonitorDataParams) -> dict[str, Any]:
    """The last ``limit`` timeline items of a server and its latest minute sample."""
    await _monitored_server(call, p.server, p.sys)
    service = fleet(call)
    data = await service.latest_sample(p.server)
    if data is None:
        raise ApiError("monitor", f"Failed to load server data: {p.server}: no monitoring sample received yet")
    return {"code": 0, "rows": service.metrics.timeline(p.server, p.sys, p.limit), "data": data}


@router.verb("get_historical_monitor_data", HistoryParams, auth=USER)
async def get_historical_monitor_data(call: Call, p: HistoryParams) -> dict[str, Any]:
    """Timeline items of the ``limit`` buckets starting at the bucket of ``date`` (epoch seconds);
    buckets before the server's first sample count too, so a window that ends before it is empty."""
    await _monitored_server(call, p.server, p.sys)
    first = p.date // SYSTEMS[p.sys]
    rows = [row for row in fleet(call).metrics.timeline(p.server, p.sys, 10**6)
            if first <= row["epoch_div"] < first + p.limit]
    return {"code": 0, "rows": rows}


class WatchParams(Params):
    id: ObjectId
    duration: int = Field(ge=0, le=10 * 365 * 86400)


async def _set_watch(call: Call, kind: str, target_id: str, duration: int, action: str,
                     **payload: Any) -> None:
    """Write or (duration 0) remove ``watches.<kind>.<id>`` in the global state, audited."""
    services = call.services
    path = f"watches.{kind}.{target_id}"
    async with services.storage.transaction() as tx:
        if duration:
            await services.state.update(tx, {path: int(time.time()) + duration})
        else:
            await services.state.remove(tx, [path])
        words = f"{duration} seconds" if duration else "0 seconds (disabled)"
        await services.activity.record(tx, action, f"{target_id}: {words}", client=call.client,
                                       username=call.user.actor, keywords=[target_id], seconds=duration,
                                       duration=words, **payload)


@router.verb("watch_server", WatchParams, privilege="create_snapshots")
async def watch_server(call: Call, p: WatchParams) -> dict[str, Any]:
    """Watch an online server for ``duration`` seconds (0 cancels): the state key
    ``watches.servers.<id>`` holds the end time."""
    server = fleet(call).online.get(p.id)
    if server is None:
        raise ApiError("server", f"Failed to locate server: {p.id}")
    require_visible(call, server)
    await _set_watch(call, "servers", p.id, p.duration, "server_watch", server_id=p.id,
                     hostname=server.get("hostname", ""))
    return {"code": 0}


@router.verb("watch_group", WatchParams, privilege="create_snapshots")
async def watch_group(call: Call, p: WatchParams) -> dict[str, Any]:
    """Watch a group for ``duration`` seconds (0 cancels): state key ``watches.groups.<id>``."""
    if call.services.list("groups").get(p.id) is None:
        raise ApiError("watch", f"Unknown group: {p.id}")
    await _set_watch(call, "groups", p.id, p.duration, "group_watch", group_id=p.id)
    return {"code": 0}


# -- adding servers ---------------------------------------------------------------------------

class TokenParams(Params):
    expires: int | float | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    title: Title | None = None
    icon: Icon | None = None
    enabled: Flag | None = None
    groups: StrList | None = None


@router.verb("get_satellite_token", TokenParams, privilege="add_servers")
async def get_satellite_token(call: Call, p: TokenParams) -> dict[str, Any]:
    """A short-lived install token for ``curl -s BASE/api/app/satellite/install?t=TOKEN | sh``."""
    service = fleet(call)
    fields = p.fields_set()
    token = await service.installer.create_token(fields, fields.get("expires"))
    return {"code": 0, "token": token, "base_url": token_base_url(call.services.config, service.host_id()),
            "image": "", "version": __version__}


class SatelliteParams(Params):
    t: str = Field(default="", max_length=256)
    s: str = Field(default="", max_length=64)
    os: str = Field(default="linux", max_length=16)


@router.verb("get_satellite_releases", auth=USER)
async def get_satellite_releases(call: Call, p: Params) -> dict[str, Any]:
    """Releases an agent upgrade may name. Sundial satellites ship inside the conductor's package,
    so there is no release feed to list: ``latest``, or ``airgap`` when agent packages come from
    an air-gap bucket (``satellite.bucket``)."""
    config = call.services.config
    if config.get("airgap.enabled") and config.get("satellite.bucket"):
        return {"code": 0, "releases": ["airgap"]}
    return {"code": 0, "releases": ["latest"]}


class UpgradeParams(Params):
    release: str = Field(max_length=64, pattern=r"^[\w\-.]+$")
    stagger: int = Field(ge=0, le=86400)
    targets: Any = None


@router.verb("admin_upgrade_workers", UpgradeParams, auth=ADMIN, params_first=True)
async def admin_upgrade_workers(call: Call, p: UpgradeParams) -> dict[str, Any]:
    """Send ``upgrade`` to the online servers among ``targets`` (server and group ids), ``stagger``
    seconds apart, as the internal job "Worker server upgrade"; ``release`` is kept as
    ``satellite.version``."""
    if not isinstance(p.targets, list) or not p.targets:
        raise ApiError("admin", "No targets selected for upgrade.")
    services = call.services
    if services.internal_jobs.running("maint"):
        raise ApiError("admin", "Cannot start upgrade while a maintenance job is running.")
    service = fleet(call)
    ids = _upgrade_targets(service, [t for t in p.targets if isinstance(t, str)])
    if not ids:
        raise ApiError("admin", "No active servers matched your target selection.")
    if services.config.get("satellite.version") != p.release:
        services.config.set_overrides({"satellite.version": p.release})
    handle = services.internal_jobs.start("Worker server upgrade", "maint", call.user.actor)

    async def work(job: InternalJobHandle) -> None:
        sent = 0
        for n, server_id in enumerate(ids):
            if n and p.stagger:
                await asyncio.sleep(p.stagger)
            sent += service.send(server_id, "upgrade", {})
            job.progress((n + 1) / len(ids))
        await job.finish(description=f"upgrade sent to {sent} of {len(ids)} servers",
                         counts={"servers": sent, "skipped": len(ids) - sent})

    services.internal_jobs.run_in_background(handle, work)
    return {"code": 0}


def _upgrade_targets(service: FleetService, targets: list[str]) -> list[str]:
    """Online server ids named directly or through one of their groups, first mention first."""
    online = service.online_servers()
    ids: list[str] = []
    for target in targets:
        if target in service.online:
            ids.append(target)
        else:
            ids.extend(s["id"] for s in online if target in (s.get("groups") or []))
    return list(dict.fromkeys(ids))


def _denied() -> ApiError:
    return ApiError("satellite", "Access denied.")


@router.verb("satellite", SatelliteParams, auth=TOKEN)
async def satellite(call: Call, p: SatelliteParams) -> Response:
    """Installer endpoints: ``satellite/install``, ``/core``, ``/config``, ``/upgrade`` (token in ``t``)."""
    method = call.path_rest.strip("/").split("/")[0]
    if method not in ("install", "core", "config", "upgrade"):
        raise ApiError("satellite", "Invalid satellite API method.")
    service = fleet(call)
    try:
        grant = await service.installer.grant(p.t, p.s, _api_key_can_add(call, p.t))
    except InstallDenied:
        raise _denied() from None
    extra = {k: v for k, v in call.params.items() if k not in ("t", "s", "os", "arch", "py")}
    windows = p.os == "windows"
    if method == "install":
        if grant.kind == "install" and extra:
            await service.installer.merge_token_params(p.t, extra)
        return PlainTextResponse(install_script(_base_url(call, service), p.t, windows))
    if method == "upgrade":
        if not re.fullmatch(r"\w+", p.s):
            raise ApiError("satellite", "Missing parameter: s")
        return PlainTextResponse(upgrade_script(_base_url(call, service), p.t, p.s, windows))
    if method == "config":
        doc = service.installer.agent_config(grant, {})
        return JSONResponse(doc, headers={"Content-Disposition": 'attachment; filename="config.json"'})
    return await _core(call, service, p)


def _api_key_can_add(call: Call, token: str) -> bool:
    record = call.services.api_keys.match(token) if token else None
    return record is not None and principal_for(call.services, "api_key", record).has("add_servers")


def _base_url(call: Call, service: FleetService) -> str:
    headers = {k.lower(): v for k, v in call.request.headers.items()}
    return request_base_url(headers, service.host_id(), int(call.services.config.get("WebServer.port")))


async def _core(call: Call, service: FleetService, p: SatelliteParams) -> Response:
    """The agent bundle, built once per agent-source fingerprint and cached under ``data/``."""
    from sundial.fleet.bundle import build_bundle, fingerprint  # the wheel builder loads with the first install

    if p.os not in ("linux", "darwin"):
        raise ApiError("satellite", f"Unsupported operating system: {p.os}")
    cache = Path(call.services.config.path("Storage.sqlite_file")).parent / "satellite"
    path = cache / f"sundial-satellite-{__version__}-{fingerprint()}.tar.gz"
    async with _bundle_lock:
        if not path.exists():
            for old in cache.glob("sundial-satellite-*.tar.gz"):
                old.unlink(missing_ok=True)
            await asyncio.to_thread(build_bundle, path)
    arch = call.params.get("arch") if call.params.get("arch") in ("x64", "arm64") else "x64"
    return FileResponse(path, media_type="application/gzip", filename=f"satellite-{p.os}-{arch}.tar.gz")
