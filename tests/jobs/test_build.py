"""The pure launch and finish rules of jobs (spec: events-and-jobs §3-§8)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from sundial.jobs.build import (
    LaunchSettings,
    completion_conditions,
    expand_params,
    final_tags,
    job_from_event,
    log_token,
    normalize_code,
    retry_copy,
)
from sundial.jobs.select import candidates, pick

EVENT = {"id": "e1", "title": "Nightly", "enabled": True, "category": "general", "plugin": "shellplug",
         "targets": ["main"], "algo": "random", "params": {"script": "true"}, "triggers": [], "revision": 4,
         "limits": [{"type": "time", "enabled": True, "duration": 5}], "actions": [], "tags": ["flag"],
         "fields": [{"id": "who", "title": "Who", "type": "text", "value": "world"}], "username": "alice"}
CATEGORY = {"id": "general", "enabled": True,
            "limits": [{"type": "job", "enabled": True, "amount": 1}, {"type": "log", "enabled": False}],
            "actions": [{"type": "email", "enabled": True, "condition": "error", "email": "ops@example.com"}]}
PLUGIN = {"id": "shellplug", "command": "[shell-plugin]", "kill": "all",
          "params": [{"id": "annotate", "title": "A", "type": "checkbox", "value": False}]}


@pytest.mark.parametrize("raw,expected", [(0, 0), (None, 0), ("", 0), (False, 0), (3, 3), ("HTTP Error", "http_error"),
                                          ("warning", "warning"), ({"x": 1}, "unknown"), (True, 1)])
def test_code_normalisation(raw: object, expected: object) -> None:
    assert normalize_code(raw) == expected


def test_job_from_event_copies_overrides_and_appends_category_items() -> None:
    job = job_from_event(EVENT, {"params": {"extra": "1"}, "command": "rm -rf /", "category": "other"},
                         category=CATEGORY, plugin=PLUGIN, settings=LaunchSettings(job_env={"A": "1"}))
    assert job["id"].startswith("j") and job["event"] == "e1"
    assert "title" not in job and "triggers" not in job and "revision" not in job and "username" not in job
    assert job["event_title"] == "Nightly" and job["event_revision"] == 4
    assert job["command"] == "[shell-plugin]" and job["kill"] == "all" and job["category"] == "general"
    assert job["params"] == {"annotate": False, "who": "world", "script": "true", "extra": "1"}
    assert [lim["type"] for lim in job["limits"]] == ["time", "job"]
    assert job["limits"][1]["source"] == "category" and job["actions"][0]["source"] == "category"
    assert job["state"] == "ready" and job["env"] == {"A": "1"} and job["log_file_size"] == 0


def test_params_expand_macros_and_overrides() -> None:
    job = {"id": "j1", "params": {"who": "{{ id }}", "msg": "hi {{ params.who }}", "_xy_override_algo": "least_cpu",
                                  "_xy_override_plugin": "evil"}, "algo": "random", "plugin": "shellplug"}
    expand_params(job, ["who"])
    assert job["params"]["who"] == "j1" and job["params"]["msg"] == "hi j1"
    assert job["algo"] == "least_cpu" and job["plugin"] == "shellplug"


def test_log_token_is_the_xyops_formula() -> None:
    digest = hashlib.sha256(b"downloadj123UNIT_TEST").digest()[:16]
    assert log_token("j123", "UNIT_TEST") == base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_conditions_and_system_tags() -> None:
    ok = {"code": 0, "tags": ["flag", "unknown", "flag"]}
    assert completion_conditions(ok) == ["complete", "success", "tag:flag", "tag:unknown", "tag:flag"]
    assert final_tags(ok, {"flag"}) == ["flag", "_success"]
    failed = {"code": "abort", "tags": [], "test": True}
    assert completion_conditions(failed) == ["complete", "error", "abort"]
    assert final_tags(failed, set()) == ["_error", "_test"]
    assert completion_conditions({"code": 7, "retried": True}) == []
    assert completion_conditions({"code": 7})[:3] == ["complete", "error", "user"]


def test_retry_rules() -> None:
    limits = [{"type": "retry", "enabled": True, "amount": 2, "duration": 30}]
    failed = {"id": "j1", "event": "e1", "code": 5, "limits": limits, "params": {}, "output": "log"}
    nxt = retry_copy(failed)
    assert nxt is not None and nxt["retry_count"] == 1 and nxt["retry_prev"] == "j1"
    assert nxt["state"] == "retry_delay" and nxt["until"] > 0 and "output" not in nxt
    assert retry_copy({**failed, "retry_count": 2}) is None
    assert retry_copy({**failed, "code": 0}) is None
    assert retry_copy({**failed, "code": "abort"}) is None
    assert retry_copy({**failed, "code": "abort", "retry_ok": True}) is not None


SERVERS = [{"id": "s1", "hostname": "b", "groups": ["main", "web"], "info": {"cpu": {"avgLoad": 2}}},
           {"id": "s2", "hostname": "a", "groups": ["main"], "info": {"cpu": {"avgLoad": 1}}},
           {"id": "s3", "hostname": "c", "groups": ["db"], "enabled": False}]


def test_targets_resolve_in_order_without_duplicates() -> None:
    assert [s["id"] for s in candidates(["s2", "main"], SERVERS)] == ["s2", "s1"]
    assert [s["id"] for s in candidates("web, s2", SERVERS)] == ["s1", "s2"]
    assert candidates(["db"], SERVERS) == []


def test_algorithms() -> None:
    pool = candidates(["main"], SERVERS)
    counter = iter(range(10))
    assert pick("prefer_first", pool, robin=lambda n: 0, active_count=lambda s: 0)["id"] == "s2"
    assert pick("prefer_last_natural", pool, robin=lambda n: 0, active_count=lambda s: 0)["id"] == "s2"
    assert pick("least_cpu", pool, robin=lambda n: 0, active_count=lambda s: 0)["id"] == "s2"
    assert pick("fewest_jobs", pool, robin=lambda n: 0, active_count=lambda s: {"s1": 0, "s2": 3}[s])["id"] == "s1"
    picks = [pick("round_robin", pool, robin=lambda n: next(counter), active_count=lambda s: 0)["id"] for _ in range(3)]
    assert picks == ["s1", "s2", "s1"]
    assert pick("random", [], robin=lambda n: 0, active_count=lambda s: 0) is None
