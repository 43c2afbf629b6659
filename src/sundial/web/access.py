"""What a viewer may see of events and jobs: the same category and group limits the API applies.

Pages read the services directly for speed, so they must apply the limits themselves; these
helpers mirror `sundial.api.events.visible` and the job checks of `sundial.api.jobs`, which
take an API `Call` that a page does not have.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_

from sundial.auth.privileges import Principal
from sundial.services import Services
from sundial.storage.schema import jobs as jobs_table
from sundial.web.viewer import Viewer


def event_visible(principal: Principal, event: dict[str, Any]) -> bool:
    """Category limit, and group limit unless the event is a workflow (which has no targets)."""
    if not principal.can_category(event.get("category")):
        return False
    return event.get("type") == "workflow" or principal.can_targets(event.get("targets") or [])


def job_visible(principal: Principal, job: dict[str, Any]) -> bool:
    return event_visible(principal, job)


def job_search_limit(principal: Principal) -> ColumnElement[bool] | None:
    """The SQL clause that keeps a limited user's job search inside their categories and groups."""
    clause: ColumnElement[bool] | None = None
    if principal.is_admin:
        return None
    if principal.categories:
        clause = jobs_table.c.category.in_(principal.categories)
    if principal.groups:
        groups = or_(*[jobs_table.c.groups.like(f"% {g} %") for g in principal.groups])
        clause = groups if clause is None else clause & groups
    return clause


def online_servers(services: Services, viewer: Viewer) -> list[dict[str, Any]]:
    """Connected servers the viewer may see (group-limited users: servers in one of their groups)."""
    fleet = services.fleet
    if fleet is None:
        return []
    principal = viewer.principal
    return [s for s in fleet.online_servers()
            if principal.is_admin or not principal.groups or any(g in principal.groups for g in s.get("groups") or [])]


def server_label(server: dict[str, Any]) -> str:
    return str(server.get("title") or server.get("hostname") or server.get("id"))
