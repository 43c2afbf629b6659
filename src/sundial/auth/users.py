"""User accounts, login with lockout, sessions and the per-user security log.

Users and live sessions are held in memory (they are read on every authenticated request)
and written through to the database in the caller's transaction. The CLI writes the
database directly and signals the conductor to reload.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from sundial.activity import ClientInfo
from sundial.auth import passwords
from sundial.config import Config
from sundial.defaults import DEFAULT_USER_PREFS
from sundial.storage.engine import Storage, Tx
from sundial.storage.schema import security_log, sessions, users

PRIVATE_FIELDS = ("password", "salt")
SECURITY_LOG_LIMIT = 1000


class LoginError(Exception):
    """A refused login; `code` is the xyOps error code (`login` or `user`)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def normalize(username: str) -> str:
    """The storage key of a user: lower case, word characters only (so `A.b` == `ab`)."""
    return re.sub(r"[^A-Za-z0-9_]", "", username).lower()


def sanitized(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k not in PRIVATE_FIELDS}


def session_expiry(days: float, now: float | None = None) -> float:
    """Local midnight of the day reached by now + days (xyOps rounds sessions that way)."""
    reached = datetime.fromtimestamp((now or time.time()) + days * 86400)
    midnight = reached.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight.timestamp()


class UserService:
    def __init__(self, storage: Storage, config: Config) -> None:
        self.storage = storage
        self.config = config
        self._users: dict[str, dict[str, Any]] = {}
        self._created: dict[str, float] = {}
        self._sessions: dict[str, dict[str, Any]] = {}

    # -- loading -------------------------------------------------------------------------
    async def load(self) -> None:
        async with self.storage.read() as conn:
            rows = (await conn.execute(select(users.c.norm, users.c.created, users.c.doc))).all()
            live = (await conn.execute(select(sessions.c.id, sessions.c.doc)
                                       .where(sessions.c.expires > time.time()))).all()
        self._users = {row.norm: row.doc for row in rows}
        self._created = {row.norm: row.created for row in rows}
        self._sessions = {row.id: row.doc for row in live}

    @property
    def exists_any(self) -> bool:
        return bool(self._users)

    def get(self, username: str) -> dict[str, Any] | None:
        return self._users.get(normalize(username))

    def roster(self) -> list[dict[str, Any]]:
        """Newest first, as the xyOps roster prepends new users."""
        order = sorted(self._users, key=lambda n: self._created.get(n, 0), reverse=True)
        return [self._users[n] for n in order if not self._users[n].get("hidden")]

    # -- writes --------------------------------------------------------------------------
    async def insert(self, tx: Tx, user: dict[str, Any]) -> None:
        norm, stored = normalize(user["username"]), copy.deepcopy(user)
        # The column orders the roster: the insert's precise time, since the record's own `created`
        # is whole seconds and users made in the same second would otherwise tie.
        created = time.time()
        await tx.conn.execute(insert(users).values(norm=norm, username=stored["username"],
                                                   created=created, doc=stored))

        def apply() -> None:
            self._users[norm] = stored
            self._created[norm] = created

        tx.after_commit(apply)

    async def save(self, tx: Tx, user: dict[str, Any]) -> None:
        norm, stored = normalize(user["username"]), copy.deepcopy(user)
        await tx.conn.execute(update(users).where(users.c.norm == norm).values(doc=stored))
        tx.after_commit(lambda: self._users.__setitem__(norm, stored))

    async def upsert(self, tx: Tx, user: dict[str, Any]) -> None:
        if normalize(user["username"]) in self._users:
            await self.save(tx, user)
        else:
            await self.insert(tx, user)

    async def remove(self, tx: Tx, username: str) -> None:
        norm = normalize(username)
        await tx.conn.execute(delete(users).where(users.c.norm == norm))
        await tx.conn.execute(delete(security_log).where(security_log.c.norm == norm))
        await tx.conn.execute(delete(sessions).where(sessions.c.username == username))

        def apply() -> None:
            self._users.pop(norm, None)
            self._created.pop(norm, None)
            for sid in [s for s, doc in self._sessions.items() if doc.get("username") == username]:
                self._sessions.pop(sid, None)

        tx.after_commit(apply)

    # -- building records ----------------------------------------------------------------
    async def new_user(self, fields: dict[str, Any], password: str) -> dict[str, Any]:
        now = int(time.time())
        user = copy.deepcopy(fields)
        prefs = self.config.get("default_user_prefs") or DEFAULT_USER_PREFS
        for key, value in prefs.items():
            user.setdefault(key, copy.deepcopy(value))
        user.setdefault("roles", [])
        user.setdefault("privileges", {})
        user.update({"active": 1, "created": now, "modified": now})
        await self.set_password(user, password)
        return user

    async def set_password(self, user: dict[str, Any], password: str) -> None:
        """New salt every time; an admin-set password also lifts a lockout."""
        user["salt"] = passwords.new_salt()
        user["password"] = await passwords.hash_password_async(
            password, user["salt"], bool(self.config.get("User.use_bcrypt", True)))
        for key in ("force_password_reset", "fl_date_code", "fl_count", "fp_date_code", "fp_count",
                    "force_password_change"):
            user.pop(key, None)

    # -- login ---------------------------------------------------------------------------
    async def check_login(self, tx: Tx, username: str, password: str) -> dict[str, Any]:
        """Verify a password with hourly failure counting; returns the user or raises."""
        user = self.get(username) if isinstance(username, str) else None
        if user is None:
            import asyncio

            await asyncio.to_thread(passwords.burn_compare, password)
            raise LoginError("login", "Username or password incorrect.")
        ok = await passwords.verify_password_async(password, user.get("salt", ""),
                                                   user.get("password", ""))
        if user.get("force_password_reset"):
            raise LoginError("login", "Account is locked out.  Please reset your password to unlock it.")
        if not ok:
            await self._count_failure(tx, user)
            raise LoginError("login", "Username or password incorrect.")
        if not user.get("active"):
            raise LoginError("login", f"User account is disabled: {user['username']}")
        return user

    async def _count_failure(self, tx: Tx, user: dict[str, Any]) -> None:
        updated = copy.deepcopy(user)
        bucket = int(time.time() // 3600)
        if updated.get("fl_date_code") != bucket:
            updated["fl_date_code"], updated["fl_count"] = bucket, 1
        else:
            updated["fl_count"] = int(updated.get("fl_count", 0)) + 1
        limit = int(self.config.get("User.max_failed_logins_per_hour", 5))
        if updated["fl_count"] > limit:
            updated["force_password_reset"] = 1
        await self.save(tx, updated)

    # -- sessions ------------------------------------------------------------------------
    async def create_session(self, tx: Tx, user: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
        now = time.time()
        doc: dict[str, Any] = {
            "id": secrets.token_hex(32), "username": user["username"], "ip": client.ip,
            "useragent": client.useragent, "created": now, "modified": now,
            "expires": session_expiry(float(self.config.get("User.session_expire_days", 365)), now),
        }
        if self.config.get("User.use_csrf", True):
            doc["csrf_token"] = secrets.token_hex(32)
        await tx.conn.execute(insert(sessions).values(id=doc["id"], username=doc["username"],
                                                      expires=doc["expires"], doc=doc))
        tx.after_commit(lambda: self._sessions.__setitem__(doc["id"], doc))
        return doc

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """Exact match only (xyOps normalised ids, so `ID!` matched `id`)."""
        doc = self._sessions.get(session_id)
        if doc is None or doc["expires"] <= time.time():
            return None
        return doc

    async def delete_session(self, tx: Tx, session_id: str) -> None:
        await tx.conn.execute(delete(sessions).where(sessions.c.id == session_id))

        def apply() -> None:
            self._sessions.pop(session_id, None)

        tx.after_commit(apply)

    async def delete_user_sessions(self, tx: Tx, username: str, keep: str | None = None) -> int:
        doomed = [sid for sid, doc in self._sessions.items()
                  if doc.get("username") == username and sid != keep]
        for sid in doomed:
            await self.delete_session(tx, sid)
        return len(doomed)

    async def touch_session(self, tx: Tx, session: dict[str, Any]) -> dict[str, Any]:
        doc = dict(session, modified=time.time())
        if self.config.get("User.use_csrf", True) and not doc.get("csrf_token"):
            doc["csrf_token"] = secrets.token_hex(32)
        await tx.conn.execute(update(sessions).where(sessions.c.id == doc["id"]).values(doc=doc))
        tx.after_commit(lambda: self._sessions.__setitem__(doc["id"], doc))
        return doc

    # -- security log --------------------------------------------------------------------
    async def add_security_event(self, tx: Tx, username: str, action: str, client: ClientInfo,
                                 **extra: Any) -> None:
        doc = {"action": action, "epoch": time.time(), "ip": client.ip, "ips": client.ips,
               "headers": client.headers, **extra}
        await tx.conn.execute(insert(security_log).values(norm=normalize(username),
                                                          epoch=doc["epoch"], doc=doc))

    async def security_events(self, username: str, offset: int, limit: int
                              ) -> tuple[list[dict[str, Any]], int]:
        norm = normalize(username)
        async with self.storage.read() as conn:
            rows = (await conn.execute(select(security_log.c.doc).where(security_log.c.norm == norm)
                                       .order_by(security_log.c.seq.desc())
                                       .limit(SECURITY_LOG_LIMIT))).all()
        docs = [row.doc for row in rows]
        return docs[offset:offset + limit], len(docs)
