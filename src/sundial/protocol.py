"""Messages shared by the conductor and the satellite (the xyOps satellite WebSocket protocol).

This module is the only piece of Sundial that both sides import, so it holds facts of the wire
format and nothing else: no I/O, no state. Every frame is one WebSocket text message carrying
``{"cmd": <name>, "data": <object>}`` (satellite-protocol.md §3). Decoding never lets an exception
other than :class:`FrameError` escape, because a conductor must survive any frame an
unauthenticated peer sends (xyOps crashes on ``null`` or a ``hello`` without data; we must not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "AGENT_MESSAGES",
    "BAD_KEYS",
    "CONDUCTOR_MESSAGES",
    "DEFAULT_PORT",
    "DEFAULT_SECURE_PORT",
    "MAX_FRAME_BYTES",
    "MAX_JOB_LOG_CHUNK",
    "MAX_PREAUTH_FRAME_BYTES",
    "PRE_AUTH_AGENT_COMMANDS",
    "WS_PATH",
    "Frame",
    "FrameError",
    "base_url",
    "decode_agent_message",
    "decode_conductor_message",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "job_token",
    "new_nonce",
    "nonce_token",
    "normalize_hostname",
    "parse_agent_message",
    "parse_conductor_message",
    "server_auth_token",
    "sha256_hex",
    "tokens_equal",
    "verify_join_token",
    "websocket_url",
]

# --------------------------------------------------------------------------------------------
# Limits and addresses
# --------------------------------------------------------------------------------------------

DEFAULT_PORT: Final = 5522
DEFAULT_SECURE_PORT: Final = 5523
WS_PATH: Final = "/"

#: Largest frame either side accepts once authenticated. A job may print one JSON line of up to
#: 32 MiB (plugin wire protocol §5) which travels inside a ``jobs`` frame, so the cap sits above it.
MAX_FRAME_BYTES: Final = 64 * 1024 * 1024
#: Before ``joined`` a peer is anonymous; ``hello`` (with host facts) is a few KiB, so anything far
#: larger is an attempt to make the conductor buffer memory for free.
MAX_PREAUTH_FRAME_BYTES: Final = 256 * 1024
#: The agent splits job output so that no single ``job_log`` frame carries more text than this.
MAX_JOB_LOG_CHUNK: Final = 1024 * 1024

#: Commands a conductor accepts from a socket that has not completed ``join``.
PRE_AUTH_AGENT_COMMANDS: Final = frozenset({"hello", "join", "echoback"})

#: Words that xyOps treats as JavaScript prototype keys; an id or map key equal to one is refused so
#: that data moved between xyOps and Sundial can never reach a prototype on the JavaScript side.
BAD_KEYS: Final = frozenset(
    {
        "constructor",
        "__defineGetter__",
        "__defineSetter__",
        "hasOwnProperty",
        "__lookupGetter__",
        "__lookupSetter__",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toString",
        "valueOf",
        "__proto__",
        "toLocaleString",
        "prototype",
        "0",
    }
)


class FrameError(ValueError):
    """A frame that must be dropped: the message says why, for a log line (never sent back)."""


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def sha256_hex(*parts: str) -> str:
    """Lowercase hex SHA-256 of the plain concatenation of ``parts`` (the protocol's only hash)."""
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


def server_auth_token(server_id: str, secret_key: str) -> str:
    """The permanent per-server credential: ``sha256(server_id + secret_key)``."""
    return sha256_hex(server_id, secret_key)


def nonce_token(nonce: str, secret_key: str) -> str:
    """Answer to a ``hello`` challenge for agents that hold the secret key instead of a token."""
    return sha256_hex(nonce, secret_key)


def job_token(job_id: str, server_token: str) -> str:
    """Job-scoped upload/finish credential: ``sha256(job_id + sha256(server_id + secret_key))``."""
    return sha256_hex(job_id, server_token)


def new_nonce() -> str:
    """A fresh 64-hex-character challenge from the OS CSPRNG."""
    return secrets.token_hex(32)


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison, so a token cannot be guessed byte by byte from response timing."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def verify_join_token(token: str, *, nonce: str, server_id: str, secret_key: str) -> bool:
    """Conductor check of ``join.token``: either the nonce answer or the server's auth token."""
    by_nonce = tokens_equal(token, nonce_token(nonce, secret_key))
    by_id = bool(server_id) and tokens_equal(token, server_auth_token(server_id, secret_key))
    return by_nonce or by_id


# --------------------------------------------------------------------------------------------
# Addresses and names
# --------------------------------------------------------------------------------------------


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def websocket_url(host: str, port: int, secure: bool) -> str:
    """``ws(s)://HOST:PORT/``: the satellite endpoint shares the HTTP listener, at the root path."""
    return f"{'wss' if secure else 'ws'}://{_host_for_url(host)}:{port}{WS_PATH}"


def base_url(host: str, port: int, secure: bool) -> str:
    """``http(s)://HOST:PORT`` of a conductor, as given to jobs in ``JOB_BASE_URL``."""
    return f"{'https' if secure else 'http'}://{_host_for_url(host)}:{port}"


_HOSTNAME_DROP = re.compile(r"[^a-z0-9_.\-/]+")


def normalize_hostname(hostname: str | None) -> str:
    """Storage-key form of an agent hostname (``Web 01/Prod!.x`` → ``web01prod.x``).

    The conductor stores and matches servers by this form; an absent hostname becomes the string
    ``undefined`` exactly as in xyOps, so imported records still line up.
    """
    if hostname is None:
        return "undefined"
    ascii_form = unicodedata.normalize("NFKD", str(hostname)).encode("ascii", "ignore").decode("ascii")
    kept = _HOSTNAME_DROP.sub("", ascii_form.lower())
    return kept.replace("/", "")


# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------

_SERVER_ID_RE = re.compile(r"^[a-z0-9_]{1,64}$")
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,128}$")


def _not_bad_key(value: str) -> str:
    if value in BAD_KEYS:
        raise ValueError(f"reserved word not allowed as an id: {value!r}")
    return value


def _check(pattern: re.Pattern[str], what: str, value: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"malformed {what}: {value[:80]!r}")
    return _not_bad_key(value)


def _matches(pattern: re.Pattern[str], what: str) -> AfterValidator:
    return AfterValidator(lambda value: _check(pattern, what, value))


def _optional_server_id(value: str) -> str:
    return value if value == "" else _check(_SERVER_ID_RE, "server id", value)


ServerId = Annotated[str, _matches(_SERVER_ID_RE, "server id")]
#: ``hello.id`` may be empty: the agent has no id yet and the conductor assigns one.
OptionalServerId = Annotated[str, AfterValidator(_optional_server_id)]
JobId = Annotated[str, _matches(_JOB_ID_RE, "job id")]
RequestId = Annotated[str, _matches(_REQUEST_ID_RE, "request id")]
PluginId = Annotated[str, _matches(_SERVER_ID_RE, "plugin id")]
JsonObject = dict[str, Any]


class _Msg(BaseModel):
    """Base of every message body: strict types, unknown keys kept (peers add fields freely)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=False)
    cmd: ClassVar[str] = ""


# --------------------------------------------------------------------------------------------
# Agent → conductor
# --------------------------------------------------------------------------------------------


class AgentHello(_Msg):
    """First frame after open; ``initial`` keys (title, icon, enabled, groups) ride along as extras."""

    cmd: ClassVar[str] = "hello"
    hostname: str | None = None
    id: OptionalServerId = ""
    info: JsonObject = Field(default_factory=dict)


class Join(_Msg):
    """Answer to the conductor's ``hello``: the auth token or the nonce answer."""

    cmd: ClassVar[str] = "join"
    token: Annotated[str, Field(min_length=1, max_length=256)]


class EchoBack(_Msg):
    """Keepalive reply carrying the conductor's ``echo`` data back unchanged."""

    cmd: ClassVar[str] = "echoback"
    id: Annotated[str, Field(min_length=1, max_length=128)]
    last_ping_ms: float | None = None


class JobUpdate(_Msg):
    """One entry of a ``jobs`` frame: a partial job object merged shallowly by the conductor."""

    id: JobId | None = None
    state: str | None = None
    progress: float | None = None
    complete: bool | None = None
    code: int | float | str | None = None
    description: str | None = None


class JobsUpdate(_Msg):
    """``jobs``: job id → partial job. Kept as a dict because the key set is open."""

    cmd: ClassVar[str] = "jobs"
    model_config = ConfigDict(strict=True, extra="forbid")
    jobs: dict[JobId, JobUpdate]

    @classmethod
    def from_data(cls, data: JsonObject) -> JobsUpdate:
        return cls.model_validate({"jobs": data})

    def to_data(self) -> JsonObject:
        return {k: v.model_dump(exclude_unset=True) for k, v in self.jobs.items()}


class JobLog(_Msg):
    """A batch of job output text to append to the job log."""

    cmd: ClassVar[str] = "job_log"
    id: JobId
    text: str


class JobMeta(_Msg):
    """An agent-side event about a job (spawned, lost connection, aborting) for the meta log."""

    cmd: ClassVar[str] = "job_meta"
    id: JobId
    text: str


class MonitorData(_Msg):
    """The per-minute ServerMonitorData envelope (satellite-protocol.md §8.2)."""

    cmd: ClassVar[str] = "monitor"
    version: str = "1.0"
    date: float
    server: OptionalServerId = ""
    hostname: str = ""
    data: JsonObject


class QuickmonData(_Msg):
    """The per-second sample (§8.3); ``commands`` only when quick monitor plugins exist."""

    cmd: ClassVar[str] = "quickmon"
    mem: JsonObject = Field(default_factory=dict)
    cpu: JsonObject = Field(default_factory=dict)
    fs: JsonObject = Field(default_factory=dict)
    net: JsonObject = Field(default_factory=dict)
    commands: JsonObject | None = None


class MonitorPluginTestResult(_Msg):
    """Reply to ``testMonitorPlugin``; ``request_id`` keys a pending HTTP request on the conductor."""

    cmd: ClassVar[str] = "monitorPluginTestResult"
    plugin_id: PluginId
    request_id: RequestId
    result: Any = None
    stderr: str = ""


class Notice(_Msg):
    """``notice`` / ``warning`` / ``error`` / ``critical``: an activity entry from the agent."""

    cmd: ClassVar[str] = "notice"
    description: str
    details: str | None = None


class WarningNotice(Notice):
    cmd: ClassVar[str] = "warning"


class ErrorNotice(Notice):
    cmd: ClassVar[str] = "error"


class CriticalNotice(Notice):
    cmd: ClassVar[str] = "critical"


# --------------------------------------------------------------------------------------------
# Conductor → agent
# --------------------------------------------------------------------------------------------


class ConductorHello(_Msg):
    """The challenge: ``nonce`` to answer and the server ``id`` (assigned when the agent had none)."""

    cmd: ClassVar[str] = "hello"
    nonce: Annotated[str, Field(min_length=1, max_length=256)]
    id: ServerId


class MasterData(_Msg):
    """The list of conductor hostnames; the agent stores it as its ``hosts``."""

    cmd: ClassVar[str] = "masterData"
    masters: list[Annotated[str, Field(min_length=1, max_length=255)]]


class Joined(_Msg):
    """Authentication succeeded; carries the fleet-wide config and the agent's working state."""

    cmd: ClassVar[str] = "joined"
    config: JsonObject = Field(default_factory=dict)
    masterData: MasterData | None = None  # noqa: N815 (wire name)
    groups: list[str] = Field(default_factory=list)
    plugins: list[JsonObject] = Field(default_factory=list)
    commands: list[JsonObject] = Field(default_factory=list)
    numServers: int = 1  # noqa: N815 (wire name)
    features: JsonObject = Field(default_factory=dict)


class AuthFailure(_Msg):
    """The conductor refused this agent; it must not reconnect until its config file changes."""

    cmd: ClassVar[str] = "auth_failure"
    description: str = ""


class Redirect(_Msg):
    """This conductor is not the primary; dial ``host`` once instead."""

    cmd: ClassVar[str] = "redirect"
    host: Annotated[str, Field(min_length=1, max_length=255)]


class Retry(_Msg):
    """No primary is known yet; close and reconnect later."""

    cmd: ClassVar[str] = "retry"


class Echo(_Msg):
    """Keepalive probe; the agent echoes it back verbatim as ``echoback``."""

    cmd: ClassVar[str] = "echo"
    id: Annotated[str, Field(min_length=1, max_length=128)]
    last_ping_ms: float | None = None


class JobSpec(_Msg):
    """The job object inside ``launch_job``: only the fields the agent relies on are typed."""

    id: JobId
    command: str = ""
    kill: str = "parent"
    runner: bool = False


class LaunchJob(_Msg):
    """Run a job: the job, its details (input, workflowData, serverData) and decrypted secrets."""

    cmd: ClassVar[str] = "launch_job"
    job: JobSpec
    details: JsonObject = Field(default_factory=dict)
    sec: dict[str, str] = Field(default_factory=dict)


class AbortJob(_Msg):
    """Abort a running job with a human-readable reason."""

    cmd: ClassVar[str] = "abort_job"
    id: JobId
    reason: str = ""


class Update(_Msg):
    """Partial agent state: any of groups, plugins, commands."""

    cmd: ClassVar[str] = "update"
    groups: list[str] | None = None
    plugins: list[JsonObject] | None = None
    commands: list[JsonObject] | None = None


class UpdateConfig(_Msg):
    """Config keys to persist (filtered by the agent's ``managed_keys``); used by key rotation."""

    cmd: ClassVar[str] = "updateConfig"


class Upgrade(_Msg):
    """Self-upgrade request."""

    cmd: ClassVar[str] = "upgrade"


class Uninstall(_Msg):
    """Remove the agent from this host (sent by ``delete_server``)."""

    cmd: ClassVar[str] = "uninstall"


class TestMonitorPlugin(_Msg):
    """Run one monitor command now and answer with ``monitorPluginTestResult``."""

    __test__ = False  # not a pytest test class despite its name
    cmd: ClassVar[str] = "testMonitorPlugin"
    plugin_id: PluginId
    request_id: RequestId


AGENT_MESSAGES: Final[dict[str, type[_Msg]]] = {
    m.cmd: m
    for m in (
        AgentHello,
        Join,
        EchoBack,
        JobsUpdate,
        JobLog,
        JobMeta,
        MonitorData,
        QuickmonData,
        MonitorPluginTestResult,
        Notice,
        WarningNotice,
        ErrorNotice,
        CriticalNotice,
    )
}

CONDUCTOR_MESSAGES: Final[dict[str, type[_Msg]]] = {
    m.cmd: m
    for m in (
        ConductorHello,
        Joined,
        AuthFailure,
        Redirect,
        Retry,
        Echo,
        MasterData,
        LaunchJob,
        AbortJob,
        Update,
        UpdateConfig,
        Upgrade,
        Uninstall,
        TestMonitorPlugin,
    )
}

# --------------------------------------------------------------------------------------------
# Encode / decode
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A structurally valid frame: a string command and an object body, not yet typed."""

    cmd: str
    data: JsonObject


def decode_frame(raw: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Frame:
    """Parse one text frame into a :class:`Frame`, or raise :class:`FrameError` saying why."""
    if not isinstance(raw, str | bytes):
        raise FrameError(f"frame is {type(raw).__name__}, not text")
    if len(raw) > max_bytes:
        raise FrameError(f"frame of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FrameError(f"frame is JSON {type(doc).__name__}, not an object")
    cmd = doc.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise FrameError("frame has no string 'cmd'")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise FrameError(f"'{cmd[:64]}' frame has no object 'data'")
    return Frame(cmd, data)


def _bad_keys_in(data: Mapping[str, Any]) -> list[str]:
    return [k for k in data if k in BAD_KEYS]


def _parse(frame: Frame, registry: Mapping[str, type[_Msg]]) -> _Msg | None:
    model = registry.get(frame.cmd)
    if model is None:
        return None
    bad = _bad_keys_in(frame.data)
    if bad:
        raise FrameError(f"'{frame.cmd}' data has reserved key(s): {', '.join(bad)}")
    try:
        if model is JobsUpdate:
            return JobsUpdate.from_data(frame.data)
        return model.model_validate(frame.data)
    except ValidationError as exc:
        raise FrameError(f"invalid '{frame.cmd}' data: {_summarize(exc)}") from None
    except (TypeError, ValueError, RecursionError) as exc:  # belt and braces: never escape
        raise FrameError(f"invalid '{frame.cmd}' data: {exc}") from None


def _summarize(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "data"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_agent_message(frame: Frame) -> _Msg | None:
    """Type a frame received by a conductor from an agent; ``None`` for an unknown command."""
    return _parse(frame, AGENT_MESSAGES)


def parse_conductor_message(frame: Frame) -> _Msg | None:
    """Type a frame received by an agent from a conductor; ``None`` for an unknown command."""
    return _parse(frame, CONDUCTOR_MESSAGES)


def decode_agent_message(raw: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> _Msg | None:
    """Decode and type in one step (conductor side)."""
    return parse_agent_message(decode_frame(raw, max_bytes=max_bytes))


def decode_conductor_message(raw: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> _Msg | None:
    """Decode and type in one step (agent side)."""
    return parse_conductor_message(decode_frame(raw, max_bytes=max_bytes))


def encode_frame(cmd: str, data: Mapping[str, Any] | BaseModel) -> str:
    """Serialise one frame as compact JSON text (orjson; non-string keys are stringified)."""
    body: Any = _dump(data) if isinstance(data, BaseModel) else data
    return orjson.dumps({"cmd": cmd, "data": body}, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def _dump(model: BaseModel) -> JsonObject:
    if isinstance(model, JobsUpdate):
        return model.to_data()
    return model.model_dump(mode="json", exclude_unset=True)


def encode_message(msg: _Msg) -> str:
    """Serialise a typed message under its own command name."""
    if not type(msg).cmd:
        raise TypeError(f"{type(msg).__name__} is not a top-level message")
    return encode_frame(type(msg).cmd, msg)
