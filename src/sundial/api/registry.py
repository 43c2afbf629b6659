"""The verb registry: each verb declares its name, params model, privilege and handler.

One declaration drives routing, validation, authorization, the authorization-table test
and the OpenAPI document, so none of them can disagree with another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sundial.api.params import NoParams

if TYPE_CHECKING:
    pass

# Auth levels: who may call a verb.
PUBLIC = "public"      # no credentials
USER = "user"          # any valid session or API key
ADMIN = "admin"        # the admin privilege
SESSION = "session"    # a user session (the /api/user namespace: API keys never work)
TOKEN = "token"        # the verb authenticates itself (job tokens, satellite tokens ...)

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Verb:
    ns: str
    name: str
    handler: Handler
    params: type[BaseModel]
    auth: str = USER
    privilege: str | None = None
    params_first: bool = False
    primary_only: bool = True
    summary: str = ""
    empty_files_ok: bool = False  # job outputs may legitimately be empty files

    @property
    def required_privilege(self) -> str | None:
        if self.auth == ADMIN:
            return "admin"
        return self.privilege


@dataclass
class VerbRouter:
    """A module's verbs, declared at import and collected by the app."""

    verbs: list[Verb] = field(default_factory=list)

    def verb(self, name: str, params: type[BaseModel] = NoParams, *, auth: str = USER,
             privilege: str | None = None, ns: str = "app", params_first: bool = False,
             primary_only: bool | None = None, summary: str | None = None,
             empty_files_ok: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            doc = [summary] if summary else (handler.__doc__ or "").strip().splitlines()
            self.verbs.append(Verb(
                ns=ns, name=name, handler=handler, params=params, auth=auth, privilege=privilege,
                params_first=params_first, empty_files_ok=empty_files_ok,
                primary_only=(auth not in (PUBLIC,)) if primary_only is None else primary_only,
                summary=doc[0] if doc else name))
            return handler

        return register


class Registry:
    """Every verb of the running conductor by (namespace, name)."""

    def __init__(self, routers: Iterable[VerbRouter] = ()) -> None:
        self._verbs: dict[tuple[str, str], Verb] = {}
        for router in routers:
            self.add(router)

    def add(self, router: VerbRouter) -> None:
        for verb in router.verbs:
            key = (verb.ns, verb.name)
            if key in self._verbs:
                raise ValueError(f"verb registered twice: {verb.ns}/{verb.name}")
            self._verbs[key] = verb

    def get(self, ns: str, name: str) -> Verb | None:
        return self._verbs.get((ns, name))

    def all(self) -> list[Verb]:
        return sorted(self._verbs.values(), key=lambda v: (v.ns, v.name))


def openapi_document(registry: Registry, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 description of every verb, generated from the params models."""
    paths: dict[str, Any] = {}
    for verb in registry.all():
        schema = verb.params.model_json_schema()
        security: list[dict[str, list[str]]] = [] if verb.auth in (PUBLIC, TOKEN) else [{"session": []}, {"apiKey": []}]
        if verb.auth == SESSION:
            security = [{"session": []}]
        paths[f"/api/{verb.ns}/{verb.name}/v1"] = {"post": {
            "operationId": f"{verb.ns}_{verb.name}",
            "summary": verb.summary,
            "description": _auth_text(verb),
            "security": security,
            "x-sundial-auth": verb.auth,
            "x-sundial-privilege": verb.required_privilege,
            "requestBody": {"content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": "`code` 0 and the verb's data",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          "4XX": {"description": "error envelope `{code, description}`"}},
        }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sundial API (xyOps-compatible)", "version": version},
        "paths": paths,
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "header", "name": "X-Session-ID"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }},
    }


def _auth_text(verb: Verb) -> str:
    if verb.auth == PUBLIC:
        return "No authentication."
    if verb.auth == TOKEN:
        return "Authenticated by a token parameter."
    if verb.auth == SESSION:
        return "Requires a user session (API keys are not accepted)."
    privilege = verb.required_privilege
    return f"Requires the `{privilege}` privilege." if privilege else "Any valid session or API key."
