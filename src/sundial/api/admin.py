"""Administration verbs: backups (export, transfer tokens, import), maintenance, stats, config.

Thin by design: parameters and privileges here, the work in `sundial.backup` and
`sundial.maintenance`. Two verbs authenticate themselves (`auth=TOKEN`) because xyOps checks
their parameters before the caller: an export's selectors (and its transfer token, which
*is* the credential of a browser download), and an import's uploaded file.
"""

from __future__ import annotations

import asyncio
import copy
import os
import platform
import re
import time
from typing import Any

from pydantic import Field
from starlette.responses import StreamingResponse

from sundial import __version__
from sundial.actions.email import EmailError, Mailer, Message
from sundial.api.call import Call, require_privilege
from sundial.api.dispatch import authenticate, principal_for
from sundial.api.errors import ApiError
from sundial.api.params import RESERVED_WORDS, CsvList, Params
from sundial.api.registry import ADMIN, TOKEN, USER, VerbRouter
from sundial.api.stats import cpu_percent, rss_bytes
from sundial.auth.privileges import Principal
from sundial.backup import tokens
from sundial.backup.delete import DataDeleter, DeleteRefused, check_items
from sundial.backup.export import SelectionError, expand_selection
from sundial.backup.importer import ImportRefused
from sundial.backup.service import BackupBusy, BackupService
from sundial.config import RESERVED_OVERRIDE_KEYS, Config, ConfigError, set_path, split_path, strip_env_prefix, validate
from sundial.internal_jobs import InternalJobHandle
from sundial.logsearch import LogQuery, search_log
from sundial.maintenance import MaintenanceBusy, database_stats, optimize_sqlite, sqlite_file
from sundial.storage.search import MAX_QUERY_LENGTH

router = VerbRouter()
TRUTHY_OFF = (None, "", "0", 0, False, "false")


class ExportParams(Params):
    token: str | None = Field(default=None, max_length=128)


def _selection(params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return expand_selection(params.get("lists"), params.get("indexes"), params.get("extras"),
                                params.get("items"))
    except SelectionError as exc:
        raise ApiError("admin", str(exc)) from None


async def _token_principal(call: Call, token: str) -> tuple[Principal, dict[str, Any]]:
    """Redeem a transfer token: the principal it was minted by (re-checked now) and its params."""
    found = await tokens.redeem(call.services.storage, token)
    services = call.services
    record: dict[str, Any] | None = None
    if found is not None and found.kind == "user":
        record = services.users.get(found.name)
        if found.session_id and services.users.get_session(found.session_id) is None:
            record = None
    elif found is not None and found.kind == "api_key":
        record = services.list("api_keys").get(found.name)
    if found is None or record is None or not record.get("active"):
        raise ApiError("admin", "Access denied.")
    return principal_for(services, found.kind, record), found.params


@router.verb("admin_export_data", ExportParams, auth=TOKEN)
async def admin_export_data(call: Call, p: ExportParams) -> StreamingResponse:
    """Stream a gzip XYBK backup of the selected lists, indexes and extras (`bulk_export`)."""
    params = p.fields_set()
    if p.token:
        principal, stored = await _token_principal(call, p.token)
        params = {**params, **stored}
        items = _selection(params)
    else:
        items = _selection(params)
        principal = await authenticate(call.services, call, call_verb(call, "admin_export_data"))
    require_privilege(principal, "bulk_export")
    body = BackupService(call.services).export_stream(items, username=principal.actor)
    name = f"sundial-data-export-{time.strftime('%Y-%m-%d')}-{os.urandom(4).hex()}.txt.gz"
    return StreamingResponse(body, media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


def call_verb(call: Call, name: str) -> Any:
    """The registered verb, for `authenticate` (it words session errors by verb kind)."""
    return next(v for v in router.verbs if v.name == name)


@router.verb("get_transfer_token", auth=ADMIN)
async def get_transfer_token(call: Call, p: Params) -> dict[str, Any]:
    """A single-use, 60-second token carrying export params, for a plain browser download link."""
    principal = call.user
    session = principal.session or {}
    name = str(principal.record.get("username") if principal.kind == "user" else principal.record.get("id"))
    token = await tokens.mint(call.services.storage, kind=principal.kind, name=name,
                              session_id=str(session.get("id") or ""), params=p.fields_set())
    return {"code": 0, "token": token}


class ImportParams(Params):
    format: str = Field(default="xyops", max_length=32)
    danger: Any = None


@router.verb("admin_import_data", ImportParams, auth=TOKEN)
async def admin_import_data(call: Call, p: ImportParams) -> dict[str, Any]:
    """Import an XYBK backup (multipart, one file); checked whole first, then written in one transaction."""
    if not call.files:
        raise ApiError("admin", "No file data found for import")
    principal = await authenticate(call.services, call, call_verb(call, "admin_import_data"))
    require_privilege(principal, "admin")
    if p.format.lower() == "cronicle":
        raise ApiError("admin", "Cronicle exports cannot be imported into Sundial. Import the Cronicle data "
                                "into xyOps, export it from there, and import that file.")
    if p.format.lower() not in ("xyops", "sundial"):
        raise ApiError("admin", f"Unknown import format: {p.format}")
    upload = next(iter(call.files.values()))
    service = BackupService(call.services)
    try:
        job_id = await service.start_import(upload, username=principal.username,
                                            email=str(principal.record.get("email") or ""), actor=principal.actor,
                                            client=call.client, danger=p.danger not in TRUTHY_OFF)
    except (BackupBusy, ImportRefused) as exc:
        raise ApiError("admin", str(exc)) from None
    return {"code": 0, "id": job_id}


class DeleteDataParams(Params):
    items: Any = None


@router.verb("admin_delete_data", DeleteDataParams, auth=ADMIN)
async def admin_delete_data(call: Call, p: DeleteDataParams) -> dict[str, Any]:
    """Delete lists, index records (`query`), users or secret payloads in bulk, as an internal job (`{id}`)."""
    principal = call.user
    try:
        items = check_items(p.items)
        deleter = DataDeleter(call.services, username=principal.username, actor=principal.actor,
                              client=call.client)
        return {"code": 0, "id": deleter.start(items, str(principal.record.get("email") or ""))}
    except (DeleteRefused, BackupBusy) as exc:
        raise ApiError("admin", str(exc)) from None


@router.verb("admin_run_maintenance", auth=ADMIN)
async def admin_run_maintenance(call: Call, p: Params) -> dict[str, Any]:
    """Run the daily maintenance now (history caps, expired records, SQLite backup, log archive)."""
    maintenance = call.services.maintenance
    if maintenance is None:
        raise ApiError("admin", "Maintenance is not running on this conductor.")
    try:
        return {"code": 0, "id": maintenance.run_now(call.user.actor)}
    except MaintenanceBusy as exc:
        raise ApiError("admin", str(exc)) from None


@router.verb("admin_run_optimization", auth=ADMIN)
async def admin_run_optimization(call: Call, p: Params) -> dict[str, Any]:
    """SQLite only: an integrity check, then VACUUM, as the internal job "Database integrity and
    optimization" (`{id}`; the report is in its `internal_job` activity record)."""
    services = call.services
    db_file = sqlite_file(services.storage)
    if db_file is None:
        raise ApiError("admin", "The current storage configuration does not require optimization.")
    if not db_file.exists():
        raise ApiError("admin", "No database file found for optimization.")
    principal = call.user
    handle = services.internal_jobs.start("Database integrity and optimization", "maint", principal.actor,
                                          email=str(principal.record.get("email") or ""))

    async def work(job: InternalJobHandle) -> None:
        healthy, details = await asyncio.to_thread(optimize_sqlite, db_file)
        await job.finish(code=0 if healthy else "db", details=details,
                         description="database optimized" if healthy else "integrity check failed")

    services.internal_jobs.run_in_background(handle, work)
    return {"code": 0, "id": handle.id}


class SearchDeleteParams(Params):
    index: str = Field(max_length=64, pattern=r"^\w+$")
    query: str = Field(max_length=MAX_QUERY_LENGTH, pattern=r"\S")


@router.verb("bulk_search_delete", SearchDeleteParams, auth=ADMIN, params_first=True)
async def bulk_search_delete(call: Call, p: SearchDeleteParams) -> dict[str, Any]:
    """Delete the records of one index (`jobs`, `activity`, `servers`) matching a search query,
    as the internal job "Custom bulk deletion (INDEX)" (`{id}`); the scheduler keeps running."""
    principal = call.user
    deleter = DataDeleter(call.services, username=principal.username, actor=principal.actor, client=call.client)
    try:
        job_id = deleter.start_search_delete(p.index, p.query.strip())
    except DeleteRefused as exc:
        raise ApiError("api", str(exc)) from None
    return {"code": 0, "id": job_id}


@router.verb("admin_stats", auth=ADMIN, primary_only=False)
async def admin_stats(call: Call, p: Params) -> dict[str, Any]:
    """Versions, database size and row counts, connected satellites."""
    services = call.services
    db = await database_stats(services.storage)
    fleet = services.fleet
    sockets = [_socket_row(fleet, sid, rec) for sid, rec in (fleet.online.items() if fleet else [])]
    python = platform.python_version()
    return {"code": 0, "stats": {
        "version": __version__, "node": {"version": python}, "python": {"version": python},
        "db": db, "unbase": {}, "cache": {}, "sockets": sockets,
        "storage_engine": "SQLite" if services.storage.is_sqlite else "PostgreSQL", "hybrid_config": {},
        "internal_jobs": len(services.internal_jobs.rows()), "uptime": round(time.time() - services.started, 3)}}


def _socket_row(fleet: Any, server_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """A satellite socket as `admin_stats` lists it (`{id, ip, type, auth, username, loc, server,
    timeStart, ping}`); `id` is the socket id, as in xyOps."""
    sock = fleet.hub.by_server.get(server_id)
    opened = time.time() - (time.monotonic() - sock.opened) if sock else 0.0
    return {"id": record.get("socket_id") or server_id, "ip": record.get("ip", ""), "type": "server", "auth": True,
            "username": "", "loc": "", "server": server_id, "hostname": record.get("hostname", ""),
            "timeStart": round(opened, 3), "ping": round(sock.rtt_ms, 3) if sock else 0}


@router.verb("dash_stats", auth=USER)
async def dash_stats(call: Call, p: Params) -> dict[str, Any]:
    """Today's stats for the dashboard: `day` holds the daily counters (`job_complete`,
    `events.<id>.job_success`, `channels.<id>.invocations`, ...) as nested objects."""
    return {"code": 0, "stats": {"day": call.services.daily.today_stats(), "mem": rss_bytes(),
                                 "cpu": cpu_percent(), "unbase": {}, "cache": {}}}


@router.verb("admin_reset_daily_stats", auth=ADMIN)
async def admin_reset_daily_stats(call: Call, p: Params) -> dict[str, Any]:
    """Start today's counters (dash_stats `day`) again from zero, as the midnight reset does."""
    await call.services.daily.reset()
    return {"code": 0}


@router.verb("admin_get_config", auth=ADMIN, primary_only=False)
async def admin_get_config(call: Call, p: Params) -> dict[str, Any]:
    """The live configuration and the overrides file, without reserved keys (secret_key, SSO, ...)."""
    from sundial.defaults import SAMPLE_CONFIG
    from sundial.docs_reference import render

    config = call.services.config
    live = {k: v for k, v in copy.deepcopy(config.data).items() if k not in RESERVED_OVERRIDE_KEYS}
    overrides = {k: v for k, v in config.overrides.items() if not _reserved(k)}
    return {"code": 0, "config": live, "overrides": overrides, "sample": _sample(SAMPLE_CONFIG),
            "markdown": render()}


def _sample(text: str) -> dict[str, Any]:
    import orjson

    try:
        data = orjson.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _reserved(key: str) -> bool:
    bare = key.removeprefix("XYOPS_").removeprefix("SUNDIAL_")
    return any(bare.startswith(word) for word in RESERVED_OVERRIDE_KEYS)


@router.verb("admin_update_config", auth=ADMIN)
async def admin_update_config(call: Call, p: Params) -> dict[str, Any]:
    """Store dot-path settings in the overrides file (sparse); a restart applies port/storage changes."""
    changes = p.fields_set()
    if not changes:
        return {"code": 0}  # nothing to store, as xyOps answers an empty update
    config = call.services.config
    for key in changes:
        if _reserved(key):
            raise ApiError("api", "Cannot update reserved configuration keys via API.")
        parts = split_path(strip_env_prefix(key))
        if not parts or any(part in RESERVED_WORDS for part in parts):
            raise ApiError("api", f"Invalid parameter: {key} (illegal key)")
    _check_values(config, changes)
    config.set_overrides(changes)
    async with call.services.storage.transaction() as tx:
        await call.services.activity.record(tx, "config_update", f"Configuration updated: {', '.join(changes)}",
                                            client=call.client, username=call.user.actor,
                                            keywords=list(changes), params=changes)
    return {"code": 0}


def _check_values(config: Config, changes: dict[str, Any]) -> None:
    """Refuse values that would stop the next start (validated on a copy of the config)."""
    trial = Config(home=config.home, data=copy.deepcopy(config.data), sources=dict(config.sources))
    for key, value in changes.items():
        parts = split_path(strip_env_prefix(key))
        set_path(trial.data, parts, copy.deepcopy(value))
        trial.sources[".".join(parts)] = "admin_update_config"
    try:
        validate(trial)
    except ConfigError as exc:
        raise ApiError("api", str(exc)) from None



def _flag(value: Any) -> bool:
    return value not in TRUTHY_OFF


class SearchLogsParams(Params):
    log: str = Field(max_length=64, pattern=r"^[\w\-]+$")
    rows: int = Field(ge=1, le=1000)
    match: str = Field(default="", max_length=4096)
    regex: Any = None
    case: Any = None
    cols: CsvList | None = None
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


@router.verb("admin_search_logs", SearchLogsParams, auth=ADMIN, primary_only=False)
async def admin_search_logs(call: Call, p: SearchLogsParams) -> dict[str, Any]:
    """The last `rows` rows of a component log (`Sundial`, `API`, `Error`, ...) matching `match`
    (text, or a regex with `regex`; case-insensitive unless `case`), today's file or a `date`'s archive.
    `list.length` counts every row of the file."""
    logs = call.services.logs
    columns = list(logs.columns)
    unknown = [c for c in p.cols or [] if c not in columns]
    if unknown:
        raise ApiError("api", f"Unknown log column: {unknown[0]}")
    query = LogQuery(match=p.match, regex=_flag(p.regex), case=_flag(p.case), rows=p.rows,
                     cols=tuple(p.cols or ()))
    try:
        query.matcher()
    except re.error as exc:
        raise ApiError("api", f"Invalid regular expression: {exc}") from None
    path = logs.file_for(p.log)
    if p.date:
        template = str(call.services.config.get("log_archive_path") or "")
        try:
            day = time.strptime(p.date, "%Y-%m-%d")
        except ValueError:
            raise ApiError("api", "Malformed parameter: date") from None
        if not template:
            return {"code": 0, "rows": [], "list": {"length": 0}}
        path = logs.archive_path(template, day, p.log)
    rows, total = await asyncio.to_thread(search_log, path, columns, query)
    return {"code": 0, "rows": rows, "list": {"length": total}}


class TestEmailParams(Params):
    to: str = Field(max_length=1024, pattern=r"^\S+@\S+$")


@router.verb("admin_send_test_email", TestEmailParams, auth=ADMIN)
async def admin_send_test_email(call: Call, p: TestEmailParams) -> dict[str, Any]:
    """Send a short message through `mail_settings` to `to`; the outcome is in `err`, `description`
    and `details` (always code 0, so the UI can show an SMTP failure as a result)."""
    config = call.services.config
    settings = config.get("mail_settings") or {}
    sender = str(config.get("email_from") or "admin@localhost")
    mailer = Mailer(settings, sender, str(config.get("email_format") or "html"))
    text = (f"This is a test e-mail from the Sundial conductor {call.services.hostname}, sent by "
            f"{call.user.actor}. If you can read it, e-mail delivery works.\n")
    message = Message(to=[p.to], subject="Sundial Test Email", text=text, html="")
    host = f"{settings.get('host') or 'localhost'}:{settings.get('port') or 25}" if isinstance(settings, dict) else "?"
    details = f"- **SMTP server:** {host}\n- **From:** {sender}\n- **To:** {p.to}\n"
    try:
        await mailer.send(message)
    except EmailError as exc:
        return {"code": 0, "err": str(exc), "description": f"Failed to send test e-mail: {exc}",
                "details": details + f"- **Error:** {exc}\n"}
    return {"code": 0, "err": False, "description": f"Test e-mail sent to {p.to}.", "details": details}
