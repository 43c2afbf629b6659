"""The 47 xyOps privileges, in the order the UI lists them, and effective-permission maths."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

PRIVILEGES: dict[str, str] = {
    "admin": "Administrator",
    "create_alerts": "Create Alerts", "edit_alerts": "Edit Alerts", "delete_alerts": "Delete Alerts",
    "create_buckets": "Create Buckets", "edit_buckets": "Edit Buckets",
    "delete_buckets": "Delete Buckets",
    "create_categories": "Create Categories", "edit_categories": "Edit Categories",
    "delete_categories": "Delete Categories",
    "create_channels": "Create Channels", "edit_channels": "Edit Channels",
    "delete_channels": "Delete Channels",
    "create_events": "Create Events", "edit_events": "Edit Events", "delete_events": "Delete Events",
    "create_groups": "Create Groups", "edit_groups": "Edit Groups", "delete_groups": "Delete Groups",
    "run_jobs": "Run Jobs", "abort_jobs": "Abort Jobs", "delete_jobs": "Delete Jobs",
    "tag_jobs": "Job Tags",
    "create_monitors": "Create Monitors", "edit_monitors": "Edit Monitors",
    "delete_monitors": "Delete Monitors",
    "create_plugins": "Create Plugins", "edit_plugins": "Edit Plugins",
    "delete_plugins": "Delete Plugins",
    "create_roles": "Create Roles", "edit_roles": "Edit Roles", "delete_roles": "Delete Roles",
    "create_tags": "Create Tags", "edit_tags": "Edit Tags", "delete_tags": "Delete Tags",
    "create_tickets": "Create Tickets", "edit_tickets": "Edit Tickets",
    "delete_tickets": "Delete Tickets",
    "create_web_hooks": "Create Web Hooks", "edit_web_hooks": "Edit Web Hooks",
    "delete_web_hooks": "Delete Web Hooks",
    "create_snapshots": "Create Snapshots", "delete_snapshots": "Delete Snapshots",
    "add_servers": "Add Servers", "update_servers": "Update Servers",
    "send_emails": "Send Emails", "bulk_export": "Bulk Export",
}


@dataclass
class Principal:
    """Who is calling: a user or an API key, with privileges and limits already merged."""

    kind: str  # "user" or "api_key"
    record: dict[str, Any]
    privileges: dict[str, bool] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    session: dict[str, Any] | None = None

    @property
    def is_admin(self) -> bool:
        return bool(self.privileges.get("admin"))

    @property
    def username(self) -> str:
        """Name stamped on objects this principal creates (a key stamps its owner)."""
        return str(self.record.get("username") or self.record.get("id") or "")

    @property
    def actor(self) -> str:
        """Name written to activity records (a key is named by its id)."""
        if self.kind == "api_key":
            return str(self.record.get("id", ""))
        return str(self.record.get("username", ""))

    @property
    def limited(self) -> bool:
        return bool(self.categories or self.groups)

    def has(self, privilege: str) -> bool:
        return self.is_admin or bool(self.privileges.get(privilege))

    def can_category(self, category_id: str | None) -> bool:
        return self.is_admin or not self.categories or category_id in self.categories

    def can_group(self, group_id: str | None) -> bool:
        return self.is_admin or not self.groups or group_id in self.groups

    def can_targets(self, targets: Iterable[str]) -> bool:
        """Targets pass when empty, unrestricted, or when any target is an allowed group."""
        targets = list(targets or [])
        if not targets or self.is_admin or not self.groups:
            return True
        return any(t in self.groups for t in targets)


def effective(record: dict[str, Any], find_role: Callable[[str], dict[str, Any] | None]
              ) -> tuple[dict[str, bool], list[str], list[str]]:
    """Merge a user's or key's own privileges and limits with those of its enabled roles."""
    privileges = {k: True for k, v in _as_dict(record.get("privileges")).items() if v}
    categories = list(_as_list(record.get("categories")))
    groups = list(_as_list(record.get("groups")))
    for role_id in _as_list(record.get("roles")):
        role = find_role(str(role_id)) if isinstance(role_id, str) else None
        if not role or not role.get("enabled", True):
            continue
        privileges.update({k: True for k, v in _as_dict(role.get("privileges")).items() if v})
        categories.extend(_as_list(role.get("categories")))
        groups.extend(_as_list(role.get("groups")))
    if privileges.get("admin"):
        return privileges, [], []
    return privileges, list(dict.fromkeys(categories)), list(dict.fromkeys(groups))


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def privilege_title(privilege: str) -> str:
    return PRIVILEGES.get(privilege, privilege)
