"""Forgot / reset password: one-time recovery keys stored as `password_recovery/<key>` records.

Why a record per key in the key/value store: the key must outlive a restart, expire on its
own (the nightly storage sweep deletes expired records) and be usable once, which one
delete in the reset transaction guarantees. Neither the key nor the new password is ever
logged; activity records name only the user.
"""

from __future__ import annotations

import copy
import hmac
import secrets
import time
from typing import Any

from sundial.activity import ActivityLog, ClientInfo
from sundial.auth.users import UserService, normalize, sanitized, session_expiry
from sundial.storage.records import delete_record, get_record, put_record

KEY_PREFIX = "password_recovery/"
RESET_FAILED = "Password reset failed."


class RecoveryError(Exception):
    """A refused reset; always code `login` with one wording, so it reveals nothing."""

    code = "login"

    def __init__(self) -> None:
        super().__init__(RESET_FAILED)
        self.description = RESET_FAILED


class PasswordRecovery:
    def __init__(self, users: UserService, activity: ActivityLog) -> None:
        self.users = users
        self.activity = activity
        self.storage = users.storage

    def _matches(self, username: str, email: str) -> dict[str, Any] | None:
        """The user whose name and e-mail (case-insensitive) both match, if active and local."""
        user = self.users.get(username)
        if user is None or not user.get("active") or user.get("remote"):
            return None
        stored = str(user.get("email") or "").strip().lower()
        return user if stored and hmac.compare_digest(stored, email.strip().lower()) else None

    def _throttled(self, user: dict[str, Any], bucket: int) -> bool:
        limit = int(self.users.config.get("User.max_forgot_passwords_per_hour", 3))
        return user.get("fp_date_code") == bucket and int(user.get("fp_count", 0)) > limit

    async def request(self, username: str, email: str, client: ClientInfo
                      ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Issue a key for a matching user: (user, recovery record), or None (no match, throttled).

        The caller sends the e-mail; the hourly counter is bumped here, with the key, so a
        burst of requests cannot outrun it.
        """
        user = self._matches(username, email)
        bucket = int(time.time() // 3600)
        if user is None or self._throttled(user, bucket):
            return None
        now = time.time()
        record = {"key": secrets.token_hex(32), "username": user["username"], "ip": client.ip,
                  "useragent": client.useragent, "created": now, "modified": now,
                  "expires": session_expiry(1, now)}
        updated = copy.deepcopy(user)
        same_hour = updated.get("fp_date_code") == bucket
        updated["fp_date_code"], updated["fp_count"] = bucket, int(updated.get("fp_count", 0)) + 1 if same_hour else 1
        async with self.storage.transaction() as tx:
            await put_record(self.storage, tx, KEY_PREFIX + record["key"], record, expires=record["expires"])
            await self.users.save(tx, updated)
            # `notice`: xyOps has no activity type of its own for this (admin-and-data.md §5.2)
            await self.activity.record(tx, "notice", f"Password reset e-mail requested for user: {user['username']}",
                                       client=client, username=user["username"], keywords=[user["username"]])
        return updated, record

    async def reset(self, username: str, key: str, new_password: str, client: ClientInfo) -> dict[str, Any]:
        """Set the password from a valid key and spend the key; raises RecoveryError otherwise."""
        record = await self._record(key)
        user = self.users.get(username)
        if record is None or user is None or normalize(str(record.get("username", ""))) != normalize(username):
            raise RecoveryError()
        updated = copy.deepcopy(user)
        await self.users.set_password(updated, new_password)  # also lifts a lockout (fl_*, fp_*)
        updated["modified"] = int(time.time())
        async with self.storage.transaction() as tx:
            await delete_record(tx, KEY_PREFIX + key)
            await self.users.save(tx, updated)
            await self.users.add_security_event(tx, updated["username"], "user_password", client,
                                                description="Password reset via e-mail recovery key")
            await self.activity.record(tx, "user_password", f"Password reset for user: {updated['username']}",
                                       client=client, username=updated["username"],
                                       keywords=[updated["username"]], user=sanitized(updated))
        return updated

    async def _record(self, key: str) -> dict[str, Any] | None:
        async with self.storage.read() as conn:
            record = await get_record(conn, KEY_PREFIX + key)
        if not isinstance(record, dict) or float(record.get("expires", 0)) <= time.time():
            return None
        return record
