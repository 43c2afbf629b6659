"""What a verb handler sees: the services, the caller, the request facts, and a response to shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from sundial.activity import ClientInfo
from sundial.api.errors import ApiError
from sundial.auth.privileges import Principal, privilege_title

if TYPE_CHECKING:
    from sundial.services import Services

# Headers that carry credentials: never logged, never stored in activity records.
SENSITIVE_HEADERS = frozenset({"cookie", "authorization", "x-api-key", "x-session-id", "x-csrf-token",
                               "proxy-authorization"})


def client_info(request: Request) -> ClientInfo:
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    ips = [ip.strip() for ip in forwarded.split(",") if ip.strip()] + ([peer] if peer else [])
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return ClientInfo(ip=ips[0] if ips else "", ips=ips, headers=headers,
                      useragent=request.headers.get("user-agent", ""))


@dataclass
class Call:
    services: Services
    request: Request
    params: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    principal: Principal | None = None
    path_rest: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)
    _client: ClientInfo | None = None

    @property
    def client(self) -> ClientInfo:
        if self._client is None:
            self._client = client_info(self.request)
        return self._client

    @property
    def user(self) -> Principal:
        """The authenticated caller (verbs that need one are never reached without it)."""
        if self.principal is None:
            raise ApiError("session", "No Session ID or API Key could be found")
        return self.principal

    def require(self, privilege: str) -> None:
        require_privilege(self.user, privilege)

    def require_category(self, category_id: str | None) -> None:
        if not self.user.can_category(category_id):
            raise ApiError("access", "You do not have the required account privileges to access "
                                     f"category ID {category_id}.")

    def require_group(self, group_id: str | None) -> None:
        if not self.user.can_group(group_id):
            raise ApiError("access", "You do not have the required account privileges to access "
                                     f"group ID {group_id}.")

    def require_targets(self, targets: list[str]) -> None:
        if not self.user.can_targets(targets):
            raise ApiError("access", "You do not have the required account privileges to access "
                                     f"targets: {', '.join(targets)}.")


def require_privilege(principal: Principal, privilege: str) -> None:
    if principal.has(privilege):
        return
    title = privilege_title(privilege)
    if principal.kind == "api_key":
        raise ApiError("access", f'API Key "{principal.record.get("title", "")}" does not have the '
                                 f'"{title}" privilege required to perform this action.')
    raise ApiError("access", f'You do not have the "{title}" privilege required to perform this action.')
