"""Adding servers: install tokens, the agent config a new server downloads, the install scripts.

Install tokens are bearer secrets, so only their SHA-256 is stored (in the ``records`` table,
with an expiry the table already honours): a database dump does not hand out installs, tokens
survive a conductor restart, and every conductor of a cluster sees the same tokens.
The three ways ``t`` authenticates follow satellite-protocol.md §2.2.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sundial.config import Config
from sundial.fleet.scripts import INSTALL_SH, UNSUPPORTED_PS1, UPGRADE_SH
from sundial.ids import generate_id
from sundial.protocol import server_auth_token, sha256_hex, tokens_equal
from sundial.storage.engine import Storage
from sundial.storage.records import get_record, put_record

TOKEN_PREFIX = "fleet/install_token/"
DEFAULT_TOKEN_TTL = 86400
TOKEN_PATTERN = re.compile(r"^[\w\-]+$")
#: Token params that never become server fields.
NOT_INITIAL = frozenset({"expires", "t", "os", "s", "arch", "py", "session_id", "api_key", "csrf_token", "id",
                         "hostname", "info", "ip", "socket_id", "created", "modified", "keywords", "autoGroup"})


class InstallDenied(Exception):
    """Deliberately vague (``Access denied.``): the caller learns nothing about which check failed."""


@dataclass(frozen=True)
class Grant:
    """Who a satellite endpoint call is: ``api_key``, ``install`` (with its params) or ``server``."""

    kind: str
    params: dict[str, Any]
    server_id: str = ""


def initial_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Server fields carried by a token (title, enabled, icon, groups ...); empty groups dropped."""
    out = {k: copy.deepcopy(v) for k, v in params.items() if k not in NOT_INITIAL}
    if "groups" in out and not out["groups"]:
        out.pop("groups")
    return out


def satellite_config(config: Config) -> dict[str, Any]:
    """The fleet-wide agent settings (``satellite.config``) as agents should see them.

    The port defaults to this conductor's own HTTP port unless configured explicitly, and an
    empty ``host`` is left out: pushing ``host: ""`` would wipe an agent's own proxy override.
    """
    cfg = copy.deepcopy(config.get("satellite.config") or {})
    if config.source_of("satellite.config.port") == "built-in defaults":
        cfg["port"] = int(config.get("WebServer.port"))
    if not cfg.get("host"):
        cfg.pop("host", None)
    return cfg


def joined_config(config: Config) -> dict[str, Any]:
    """``joined.config``: the conductor's air-gap rules overlaid by ``satellite.config``."""
    return {"airgap": copy.deepcopy(config.get("airgap") or {}), **satellite_config(config)}


def token_base_url(config: Config, host_id: str) -> str:
    """``base_url`` of a token response (§2.3): configured agent host or our host id."""
    cfg = satellite_config(config)
    secure = bool(cfg.get("secure"))
    host = str(cfg.get("host") or host_id)
    port = int(cfg.get("port") or config.get("WebServer.port"))
    default = 443 if secure else 80
    return f"{'https' if secure else 'http'}://{host}" + ("" if port == default else f":{port}")


def request_base_url(headers: Mapping[str, str], fallback_host: str, fallback_port: int) -> str:
    """The conductor as the installing host reached it: ``scheme://Host`` (proxy-aware scheme)."""
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    secure = proto == "https" or headers.get("x-forwarded-ssl", "").lower() == "on" or \
        headers.get("front-end-https", "").lower() == "on"
    scheme = "https" if secure else "http"
    host = headers.get("host", "").strip()
    if not re.fullmatch(r"[\w.\-]+(:\d{1,5})?|\[[0-9a-fA-F:.]+\](:\d{1,5})?", host):
        host = f"{fallback_host}:{fallback_port}"
    return f"{scheme}://{host}"


def render(template: str, **values: str) -> str:
    """Fill ``[name]`` placeholders; every value was validated against a strict pattern first."""
    for key, value in values.items():
        template = template.replace(f"[{key}]", value)
    return template


def install_script(base_url: str, token: str, windows: bool = False) -> str:
    if windows:
        return UNSUPPORTED_PS1
    return render(INSTALL_SH, base_url=base_url, auth_token=token)


def upgrade_script(base_url: str, token: str, server_id: str, windows: bool = False) -> str:
    if windows:
        return UNSUPPORTED_PS1
    return render(UPGRADE_SH, base_url=base_url, auth_token=token, server_id=server_id)


class Installer:
    """Install tokens and the documents served to installing hosts."""

    def __init__(self, config: Config, storage: Storage, host_id: Callable[[], str],
                 server_known: Callable[[str], bool]) -> None:
        self.config = config
        self.storage = storage
        self.host_id = host_id
        self.server_known = server_known

    @property
    def secret_key(self) -> str:
        return str(self.config.get("secret_key") or "")

    async def create_token(self, params: Mapping[str, Any], expires: float | None = None) -> str:
        """A fresh 64-hex install token carrying the initial server fields of ``params``."""
        token = secrets.token_hex(32)
        ttl = float(expires) if isinstance(expires, int | float) and expires > 0 else DEFAULT_TOKEN_TTL
        now = time.time()
        record = {"type": "satellite", "created": now, "expires": now + ttl, "params": initial_params(params)}
        async with self.storage.transaction() as tx:
            await put_record(self.storage, tx, TOKEN_PREFIX + sha256_hex(token), record, expires=now + ttl)
        return token

    async def token_params(self, token: str) -> dict[str, Any] | None:
        async with self.storage.read() as conn:
            record = await get_record(conn, TOKEN_PREFIX + sha256_hex(token))
        if not isinstance(record, dict) or record.get("type") != "satellite":
            return None
        return dict(record.get("params") or {})

    async def merge_token_params(self, token: str, extra: Mapping[str, Any]) -> None:
        """``/install?t=TOKEN&title=...``: extra query keys join the token's initial server fields."""
        key = TOKEN_PREFIX + sha256_hex(token)
        async with self.storage.transaction() as tx:
            record = await get_record(tx.conn, key)
            if isinstance(record, dict):
                record["params"] = {**(record.get("params") or {}), **initial_params(extra)}
                await put_record(self.storage, tx, key, record, expires=record.get("expires"))

    async def grant(self, token: str, server_id: str, api_key_ok: bool) -> Grant:
        """Check ``t`` the three ways of §2.2, in order; raise :class:`InstallDenied` otherwise."""
        if not TOKEN_PATTERN.match(token or ""):
            raise InstallDenied()
        if api_key_ok:
            return Grant("api_key", {})
        params = await self.token_params(token)
        if params is not None:
            return Grant("install", params)
        if server_id and re.fullmatch(r"\w+", server_id) and self.server_known(server_id) and \
                self.secret_key and tokens_equal(token, server_auth_token(server_id, self.secret_key)):
            return Grant("server", {}, server_id)
        raise InstallDenied()

    def agent_config(self, grant: Grant, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``config.json`` for a new server: fleet settings, our host, a fresh id and its token."""
        doc = satellite_config(self.config)
        doc.setdefault("airgap", copy.deepcopy(self.config.get("airgap") or {}))
        server_id = generate_id("s")
        doc.update(hosts=[self.host_id()], server_id=server_id,
                   auth_token=server_auth_token(server_id, self.secret_key))
        initial = {**grant.params, **initial_params(extra or {})} if grant.kind == "install" else {}
        if initial:
            doc["initial"] = initial
        return doc
