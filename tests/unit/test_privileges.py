"""Effective permissions: privileges and limits merged from enabled roles; admin clears limits."""

from __future__ import annotations

from sundial.auth.privileges import PRIVILEGES, effective

ROLES = {
    "ops": {"enabled": True, "privileges": {"run_jobs": True, "abort_jobs": 0}, "categories": ["c2"], "groups": []},
    "off": {"enabled": False, "privileges": {"delete_events": True}},
    "boss": {"enabled": True, "privileges": {"admin": True}},
}


def test_there_are_47_privileges_starting_with_admin() -> None:
    assert len(PRIVILEGES) == 47 and next(iter(PRIVILEGES)) == "admin"


def test_roles_add_privileges_and_limits_only_when_enabled() -> None:
    record = {"privileges": {"create_events": True}, "roles": ["ops", "off", "missing"], "categories": ["c1"]}
    privileges, categories, groups = effective(record, ROLES.get)
    assert privileges == {"create_events": True, "run_jobs": True}
    assert categories == ["c1", "c2"] and groups == []


def test_admin_through_a_role_is_never_limited() -> None:
    privileges, categories, groups = effective({"roles": ["boss"], "categories": ["c1"], "groups": ["g"]}, ROLES.get)
    assert privileges["admin"] and categories == [] and groups == []


def test_malformed_records_do_not_raise() -> None:
    assert effective({"privileges": "x", "roles": "y", "categories": None}, ROLES.get) == ({}, [], [])
