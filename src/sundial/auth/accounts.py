"""Account operations behind the user verbs: create, update, delete, login, password change.

Each runs in one transaction with its activity record, so a refused or failed change leaves
no trace but the error.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from sundial.activity import ActivityLog, ClientInfo
from sundial.auth.privileges import effective
from sundial.auth.users import LoginError, UserService, normalize, sanitized
from sundial.storage.lists import ConfigList

# Never settable by anyone through an API (computed or secret).
COMPUTED_FIELDS = ("password", "salt", "created", "modified", "fl_date_code", "fl_count",
                   "fp_date_code", "fp_count")
# Not settable by users on themselves (privilege escalation or lockout bypass).
SELF_FORBIDDEN = COMPUTED_FIELDS + ("new_password", "old_password", "active", "privileges", "roles",
                                    "categories", "groups", "force_password_reset", "username",
                                    "remote", "sync", "force_password_change", "hidden")


class AccountError(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class Accounts:
    def __init__(self, users: UserService, activity: ActivityLog, roles: ConfigList) -> None:
        self.users = users
        self.activity = activity
        self.roles = roles
        self.storage = users.storage

    def _clear_limits_if_admin(self, user: dict[str, Any]) -> None:
        """An account that computes as admin is never category- or group-limited."""
        privileges, _, _ = effective(user, self.roles.get)
        if privileges.get("admin"):
            user["categories"], user["groups"] = [], []

    async def create(self, fields: dict[str, Any], password: str, *, actor: str | None,
                     client: ClientInfo) -> dict[str, Any]:
        username = fields["username"]
        if self.users.get(username) is not None:
            raise AccountError("user_exists", f"User already exists: {username}")
        clean = {k: v for k, v in fields.items() if k not in COMPUTED_FIELDS}
        user = await self.users.new_user(clean, password)
        self._clear_limits_if_admin(user)
        async with self.storage.transaction() as tx:
            await self.users.insert(tx, user)
            await self.activity.record(tx, "user_create", username, client=client,
                                       username=actor or username, keywords=[username],
                                       user=sanitized(user))
        return user

    async def admin_update(self, username: str, fields: dict[str, Any], *, actor: str,
                           client: ClientInfo) -> dict[str, Any]:
        current = self._existing(username)
        user = copy.deepcopy(current)
        new_password = fields.get("new_password")
        user.update({k: v for k, v in fields.items()
                     if k not in COMPUTED_FIELDS + ("username", "new_password", "unlock")})
        if fields.get("unlock"):
            for key in ("force_password_reset", "fl_date_code", "fl_count", "fp_date_code", "fp_count"):
                user.pop(key, None)
        if new_password:
            await self.users.set_password(user, str(new_password))
        user["modified"] = int(time.time())
        self._clear_limits_if_admin(user)
        async with self.storage.transaction() as tx:
            await self.users.save(tx, user)
            await self.activity.record(tx, "user_update", username, client=client, username=actor,
                                       admin=actor, keywords=[username], user=sanitized(user))
        return user

    async def self_update(self, session_user: dict[str, Any], fields: dict[str, Any],
                          client: ClientInfo) -> dict[str, Any]:
        from sundial.auth import passwords

        old = fields.get("old_password")
        if not isinstance(old, str) or not await passwords.verify_password_async(
                old, session_user.get("salt", ""), session_user.get("password", "")):
            raise AccountError("user", "Your password is incorrect.")
        user = copy.deepcopy(session_user)
        user.update({k: v for k, v in fields.items() if k not in SELF_FORBIDDEN})
        new_password = fields.get("new_password")
        if isinstance(new_password, str) and new_password:
            await self.users.set_password(user, new_password)
        user["modified"] = int(time.time())
        username = user["username"]
        async with self.storage.transaction() as tx:
            await self.users.save(tx, user)
            action = "user_password" if new_password else "user_update"
            await self.users.add_security_event(tx, username, action, client)
            await self.activity.record(tx, action, username, client=client, username=username,
                                       keywords=[username], user=sanitized(user))
        return user

    async def settings(self, session_user: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """UI preferences only; deliberately not in the activity log (it changes constantly)."""
        user = copy.deepcopy(session_user)
        user.update({k: v for k, v in fields.items() if k not in SELF_FORBIDDEN})
        user["modified"] = int(time.time())
        async with self.storage.transaction() as tx:
            await self.users.save(tx, user)
        return user

    async def delete(self, username: str, *, actor: str, client: ClientInfo) -> None:
        current = self._existing(username)
        async with self.storage.transaction() as tx:
            await self.users.remove(tx, current["username"])
            await self.activity.record(tx, "user_delete", current["username"], client=client,
                                       username=actor, keywords=[current["username"]],
                                       user=sanitized(current))

    async def login(self, username: str, password: str, client: ClientInfo
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Returns (user, session); failures still commit their lockout counting."""
        failure: LoginError | None = None
        async with self.storage.transaction() as tx:
            try:
                user = await self.users.check_login(tx, username, password)
            except LoginError as exc:
                failure = exc
            else:
                session = await self.users.create_session(tx, user, client)
                await self.users.add_security_event(tx, user["username"], "user_login", client)
                await self.activity.record(tx, "user_login", user["username"], client=client,
                                           username=user["username"], keywords=[user["username"]])
        if failure is not None:
            raise failure
        return user, session

    def _existing(self, username: str) -> dict[str, Any]:
        user = self.users.get(username)
        if user is None:
            raise AccountError("user", f"User not found: {username}")
        return user


def valid_username(username: str, pattern: str = r"^[\w\-\.]+$") -> bool:
    return bool(re.match(pattern, username)) and bool(normalize(username))
