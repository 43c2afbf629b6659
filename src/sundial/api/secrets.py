"""Secret verbs (xyOps `get_secrets` ... `delete_secret`) and `admin_rotate_secret_key`.

Thin by design: types are checked by the params models, everything else (names, sizes,
assignments, encryption, audit) by `sundial.vault`. Listing and get return metadata only;
`decrypt_secret` is the one verb whose answer carries values.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.params import Flag, Icon, IdParams, Notes, ObjectId, Params, Title
from sundial.api.registry import ADMIN, USER, VerbRouter
from sundial.auth import passwords
from sundial.vault.errors import VaultError

router = VerbRouter()
T = TypeVar("T")

# Item checks (id shape, counts, sizes) are the vault's; these only guarantee "an array".
IdList = list[Any]


class _SecretFields(Params):
    """What create and update share; update writes only the fields it is given."""

    title: Title | None = None
    enabled: Flag | None = None
    icon: Icon | None = None
    notes: Notes | None = None
    events: IdList | None = None
    categories: IdList | None = None
    plugins: IdList | None = None
    web_hooks: IdList | None = None
    fields: list[Any] | None = None


class SecretCreateParams(_SecretFields):
    id: ObjectId | None = None
    title: Title


class SecretUpdateParams(_SecretFields):
    id: ObjectId


class RotateParams(Params):
    password: str = Field(max_length=1024)


async def _vault(action: Awaitable[T]) -> T:
    """Vault refusals become the envelope; their texts never carry values or keys."""
    try:
        return await action
    except VaultError as exc:
        raise ApiError(exc.code, exc.description) from None


@router.verb("get_secrets", auth=USER)
async def get_secrets(call: Call, p: Params) -> dict[str, Any]:
    """Every secret's metadata (names, assignments); never values."""
    rows = call.services.vault.all_metadata()
    return {"code": 0, "rows": rows, "list": {"length": len(rows)}}


@router.verb("get_secret", IdParams, auth=USER)
async def get_secret(call: Call, p: IdParams) -> dict[str, Any]:
    """One secret's metadata; never values."""
    secret = call.services.vault.get_metadata(p.id)
    if secret is None:
        raise ApiError("notfound", f"Secret not found: {p.id}")
    return {"code": 0, "secret": secret}


@router.verb("decrypt_secret", IdParams, auth=ADMIN)
async def decrypt_secret(call: Call, p: IdParams) -> dict[str, Any]:
    """The decrypted fields of one secret; audited as `secret_access`."""
    fields = await _vault(call.services.vault.decrypt_for_admin(p.id, actor=call.user.actor, client=call.client))
    return {"code": 0, "fields": fields}


@router.verb("create_secret", SecretCreateParams, auth=ADMIN)
async def create_secret(call: Call, p: SecretCreateParams) -> dict[str, Any]:
    """Create a secret; `fields` values are encrypted, the answer holds metadata only."""
    secret = await _vault(call.services.vault.create(p.fields_set(), username=call.user.username,
                                                     actor=call.user.actor, client=call.client))
    return {"code": 0, "secret": secret}


@router.verb("update_secret", SecretUpdateParams, auth=ADMIN)
async def update_secret(call: Call, p: SecretUpdateParams) -> dict[str, Any]:
    """Sparse update; `fields`, when sent, replaces every value."""
    params = p.fields_set()
    await _vault(call.services.vault.update(p.id, params, actor=call.user.actor, client=call.client))
    return {"code": 0}


@router.verb("delete_secret", IdParams, auth=ADMIN)
async def delete_secret(call: Call, p: IdParams) -> dict[str, Any]:
    """Delete a secret's values and metadata."""
    await _vault(call.services.vault.delete(p.id, actor=call.user.actor, client=call.client))
    return {"code": 0}


@router.verb("admin_rotate_secret_key", RotateParams, auth=ADMIN)
async def admin_rotate_secret_key(call: Call, p: RotateParams) -> dict[str, Any]:
    """Rotate the secret key (xyOps model): answers at once with the internal job id.

    The password is re-checked against the caller's own account, so an API key (which has no
    password) is told it needs a user session rather than that its password is wrong.
    """
    if call.user.kind != "user":
        raise ApiError("admin", "Rotating the secret key needs a user session: the password is re-checked "
                                "against the caller's account, and an API key has none. Log in as an "
                                "administrator, or use POST /api/maintenance/rotate-key with the old and new keys.")
    user = call.services.users.get(call.user.username)
    if user is None or not await passwords.verify_password_async(p.password, user.get("salt", ""),
                                                                  user.get("password", "")):
        raise ApiError("admin", "Incorrect password.")
    job_id = await _vault(call.services.rotations.start_orchestrated(
        username=call.user.username, email=str(user.get("email") or ""), actor=call.user.actor,
        client=call.client))
    return {"code": 0, "id": job_id}
