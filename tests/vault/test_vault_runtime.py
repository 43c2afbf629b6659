"""Delivery order, the Secret.log line, `{{ secrets.X }}` macros and redaction."""

from __future__ import annotations

import json
from typing import Any

from sundial.vault.runtime import (
    JobTarget,
    SecretUse,
    WorkflowParent,
    assigned_secrets,
    expand_secret_macros,
    job_lookups,
    merge_env,
    plan_uses,
    redact,
    use_log_entry,
)


def _secret(sid: str, **assign: Any) -> dict[str, Any]:
    enabled = assign.pop("enabled", True)
    return {"id": sid, "title": f"Title {sid}", "enabled": enabled, "names": ["X"], **assign}


def _always(_sid: str) -> bool:
    return True


def test_plain_job_lookup_order() -> None:
    job = JobTarget(event="e1", category="c1", plugin="p1")
    assert job_lookups(job) == [("events", "e1"), ("categories", "c1"), ("plugins", "p1")]


def test_workflow_sub_job_adds_parent_event_and_category_before_its_own_category() -> None:
    job = JobTarget(event="e1", category="c1", plugin="p1", parent=WorkflowParent(event="wf", category="c9"))
    assert job_lookups(job) == [("events", "e1"), ("events", "wf"), ("categories", "c9"),
                                ("categories", "c1"), ("plugins", "p1")]


def test_parent_lookups_are_skipped_when_they_repeat_the_job() -> None:
    job = JobTarget(event="e1", category="c1", plugin="p1", parent=WorkflowParent(event="e1", category="c1"))
    assert job_lookups(job) == [("events", "e1"), ("categories", "c1"), ("plugins", "p1")]


def test_precedence_plugin_over_category_over_parent_over_event() -> None:
    secrets = [
        _secret("s_plugin", plugins=["p1"]),
        _secret("s_cat", categories=["c1"]),
        _secret("s_pcat", categories=["c9"]),
        _secret("s_pevent", events=["wf"]),
        _secret("s_event", events=["e1"]),
    ]
    fields = {sid: [{"name": "WHO", "value": sid}, {"name": f"ONLY_{sid}", "value": "1"}]
              for sid in ("s_plugin", "s_cat", "s_pcat", "s_pevent", "s_event")}
    job = JobTarget("e1", "c1", "p1", WorkflowParent("wf", "c9"))
    uses = plan_uses(secrets, job_lookups(job), _always)
    assert [use.secret_id for use in uses] == ["s_event", "s_pevent", "s_pcat", "s_cat", "s_plugin"]
    env = merge_env(uses, fields)
    assert env["WHO"] == "s_plugin" and len(env) == 6
    without_plugin = [use for use in uses if use.kind != "plugins"]
    assert merge_env(without_plugin, fields)["WHO"] == "s_cat"


def test_later_secrets_in_list_order_win_within_one_lookup() -> None:
    secrets = [_secret("first", events=["e1"]), _secret("second", events=["e1"])]
    uses = plan_uses(secrets, [("events", "e1")], _always)
    env = merge_env(uses, {"first": [{"name": "A", "value": "1"}], "second": [{"name": "A", "value": "2"}]})
    assert env == {"A": "2"}


def test_a_name_repeated_within_one_secret_takes_its_last_value() -> None:
    """xyOps keeps repeated names (spec §1 does not forbid them); env is set field by field."""
    uses = plan_uses([_secret("dup", events=["e1"])], [("events", "e1")], _always)
    fields = [{"name": "A", "value": "1"}, {"name": "B", "value": "b"}, {"name": "A", "value": "2"}]
    assert merge_env(uses, {"dup": fields}) == {"A": "2", "B": "b"}


def test_disabled_unassigned_and_unstored_secrets_are_not_delivered() -> None:
    secrets = [_secret("off", events=["e1"], enabled=False), _secret("other", events=["e2"]),
               _secret("nostore", events=["e1"]), _secret("ok", events=["e1"]), _secret("bad", events="e1")]
    got = assigned_secrets(secrets, "events", "e1", has_record=lambda sid: sid != "nostore")
    assert [secret["id"] for secret in got] == ["ok"]


def test_a_secret_that_failed_to_decrypt_is_skipped() -> None:
    uses = plan_uses([_secret("a", plugins=["p"]), _secret("b", plugins=["p"])], [("plugins", "p")], _always)
    assert merge_env(uses, {"b": [{"name": "B", "value": "2"}]}) == {"B": "2"}


def test_imported_non_string_values_become_env_text() -> None:
    uses = [SecretUse(_secret("a"), "events", "e")]
    env = merge_env(uses, {"a": [{"name": "N", "value": 5}, {"name": "T", "value": True}, {"value": "x"}]})
    assert env == {"N": "5", "T": "true"}


def test_use_log_line_has_the_spec_message_and_metadata_only(no_leak: Any) -> None:
    secret = {**_secret("zdb", events=["e1"]), "fields": [{"name": "X", "value": "synthetic-leak-9"}]}
    entry = use_log_entry(SecretUse(secret, "events", "e1"))
    assert (entry.component, entry.category, entry.code) == ("Secret", "debug", 1)
    assert entry.message == "Using secret zdb (Title zdb) for events: e1"
    assert entry.data["type"] == "events" and entry.data["id"] == "e1"
    assert entry.data["secret"]["id"] == "zdb" and "fields" not in entry.data["secret"]
    no_leak(json.dumps(entry.data) + entry.message, "synthetic-leak-9", "the Secret.log line")


def test_secret_macros_expand_once_and_leave_other_macros() -> None:
    secrets = {"TOKEN": "t-1", "NESTED": "{{ secrets.TOKEN }}"}
    text = "Bearer {{secrets.TOKEN}} / {{ secrets.NESTED }} / {{ job.id }} / [{{ secrets.NOPE }}]"
    assert expand_secret_macros(text, secrets) == "Bearer t-1 / {{ secrets.TOKEN }} / {{ job.id }} / []"
    assert expand_secret_macros("{{secrets.NOPE}}", secrets, undefined_value="N/A") == "N/A"


def test_redaction_covers_raw_and_url_encoded_values() -> None:
    values = ["p@ss word/1", "RED", ""]
    text = "url=https://x/?p=p%40ss%20word%2F1 raw=p@ss word/1 short=RED"
    assert redact(text, values) == "url=https://x/?p=(REDACTED) raw=(REDACTED) short=(REDACTED)"
    assert redact("nothing here", []) == "nothing here"


def test_redaction_prefers_the_longest_value() -> None:
    assert redact("abcdef", ["abc", "abcdef"]) == "(REDACTED)"
