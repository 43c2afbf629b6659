"""Offline administration used by `sundial admin ...`: the same services, no web server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sundial.activity import ClientInfo
from sundial.app import build_services, load_services, make_log_manager
from sundial.auth.accounts import AccountError, valid_username
from sundial.auth.apikeys import generate_plain_key, key_hash, key_mask
from sundial.auth.privileges import PRIVILEGES
from sundial.config import Config
from sundial.ids import generate_id
from sundial.objects import API_KEY
from sundial.seed import seed_first_start
from sundial.services import Services

CLI_CLIENT = ClientInfo(useragent="Sundial CLI")


async def run_offline(config: Config, action: Callable[[Services], Awaitable[Any]]) -> Any:
    logs = make_log_manager(config)
    services = build_services(config, logs)
    try:
        await load_services(services)
        await seed_first_start(services)
        return await action(services)
    except AccountError as exc:
        raise ValueError(exc.description) from None
    finally:
        await services.storage.close()
        logs.close()


async def create_user(services: Services, username: str, password: str, email: str, full_name: str,
                      admin: bool) -> None:
    if not valid_username(username):
        raise ValueError(f"Invalid username: {username} (letters, digits, _ - . only)")
    fields = {"username": username, "email": email or f"{username}@localhost",
              "full_name": full_name or username, "privileges": {"admin": True} if admin else
              dict(services.config.get("default_user_privileges") or {})}
    await services.accounts.create(fields, password, actor="cli", client=CLI_CLIENT)


async def reset_password(services: Services, username: str, password: str) -> None:
    await services.accounts.admin_update(username, {"new_password": password, "unlock": True},
                                         actor="cli", client=CLI_CLIENT)


async def unlock(services: Services, username: str) -> None:
    await services.accounts.admin_update(username, {"unlock": True}, actor="cli", client=CLI_CLIENT)


async def set_privilege(services: Services, username: str, privilege: str, on: bool) -> None:
    if privilege not in PRIVILEGES:
        raise ValueError(f"Unknown privilege: {privilege} (known: {', '.join(PRIVILEGES)})")
    user = services.users.get(username)
    if user is None:
        raise ValueError(f"User not found: {username}")
    privileges = dict(user.get("privileges") or {})
    if on:
        privileges[privilege] = True
    else:
        privileges.pop(privilege, None)
    await services.accounts.admin_update(username, {"privileges": privileges}, actor="cli",
                                         client=CLI_CLIENT)


async def create_api_key(services: Services, title: str, privileges: list[str]) -> str:
    unknown = [p for p in privileges if p not in PRIVILEGES]
    if unknown:
        raise ValueError(f"Unknown privilege: {', '.join(unknown)}")
    plain, key_id = generate_plain_key(), generate_id("k")
    fields = {"id": key_id, "title": title, "key": key_hash(plain, key_id), "mask": key_mask(plain),
              "active": 1, "description": "", "roles": [], "privileges": {p: True for p in privileges}}
    await services.objects.create(API_KEY, services.list("api_keys"), fields, username="cli",
                                  actor="cli", client=CLI_CLIENT)
    return plain
