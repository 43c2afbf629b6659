"""Secrets, web hooks and channels as a client sees them (secrets-and-webhooks.md, events-and-jobs.md §13).

Black-box: HTTP only, exact codes and strings. Secret values used here are synthetic and are
never printed: assertions compare them without echoing them in messages.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from harness import Api


def _stored_records(admin: Api) -> dict[str, dict[str, Any]]:
    """The `secrets/<id>` records as `admin_export_data` writes them (ciphertext only)."""
    resp = admin.http.post("/api/app/admin_export_data/v1", headers=admin.headers,
                           json={"lists": ["secrets"], "indexes": [], "extras": []})
    assert resp.status_code == 200
    lines = [json.loads(line) for line in gzip.decompress(resp.content).decode().splitlines()
             if line.lstrip().startswith("{")]
    return {line["key"]: line["value"] for line in lines if str(line.get("key", "")).startswith("secrets/")}


def test_every_write_of_fields_draws_a_new_salt_and_iv(admin: Api, uid: str) -> None:
    """§2: salt and IV are new per encryption, so no two records or versions share them."""
    ids = [f"z{uid}a", f"z{uid}b"]
    for sid in ids:
        admin.ok("create_secret", {"id": sid, "title": "Salt", "fields": [{"name": "S", "value": "one"}]})
    try:
        first = _stored_records(admin)
        admin.ok("update_secret", {"id": ids[0], "fields": [{"name": "S", "value": "two"}]})
        second = _stored_records(admin)
        seen = [first[f"secrets/{ids[0]}"], first[f"secrets/{ids[1]}"], second[f"secrets/{ids[0]}"]]
        assert len({rec["salt"] for rec in seen}) == 3 and len({rec["iv"] for rec in seen}) == 3
        assert all(len(base64.b64decode(rec["salt"])) == 16 for rec in seen)
        assert second[f"secrets/{ids[1]}"] == first[f"secrets/{ids[1]}"]  # untouched record unchanged
        admin.ok("update_secret", {"id": ids[1], "title": "Renamed"})  # no fields: ciphertext kept
        assert _stored_records(admin)[f"secrets/{ids[1]}"] == first[f"secrets/{ids[1]}"]
    finally:
        for sid in ids:
            admin.call("delete_secret", {"id": sid})


def test_variable_names_need_not_be_posix_but_reserved_words_are_refused(admin: Api, uid: str) -> None:
    """§1: POSIX names are recommended, not enforced; the reserved "bad keys" are refused."""
    fields = [{"name": "api-key.v2", "value": "x"}, {"name": "lower", "value": "y"}]
    made = admin.ok("create_secret", {"id": "z" + uid, "title": "Names", "fields": fields})
    try:
        assert made["secret"]["names"] == ["api-key.v2", "lower"]
        fields = admin.ok("decrypt_secret", {"id": "z" + uid})["fields"]
        assert [f["name"] for f in fields] == ["api-key.v2", "lower"]
    finally:
        admin.call("delete_secret", {"id": "z" + uid})
    for name in ("__proto__", "constructor", "toString", "0"):
        bad = admin.call("create_secret", {"title": "Bad", "fields": [{"name": name, "value": "x"}]})
        assert bad == {"code": "api", "description": f"Invalid secret variable name: {name}"}
    assert not [s for s in admin.ok("get_secrets")["rows"] if s["title"] == "Bad"]


def test_a_repeated_variable_name_is_kept_as_sent(admin: Api, uid: str) -> None:
    """§1 does not forbid repeated names and xyOps keeps them: stored in order, nothing dropped."""
    fields = [{"name": "A", "value": "one"}, {"name": "B", "value": "b"}, {"name": "A", "value": "two"}]
    made = admin.ok("create_secret", {"id": "z" + uid, "title": "Repeats", "fields": fields})
    try:
        assert made["secret"]["names"] == ["A", "B", "A"]
        assert admin.ok("decrypt_secret", {"id": "z" + uid})["fields"] == fields
    finally:
        admin.call("delete_secret", {"id": "z" + uid})


def test_web_hook_refusals_name_the_hook(admin: Api, uid: str) -> None:
    """§7.4: duplicate id and a body macro that does not compile are `web_hook` errors."""
    hook = {"id": uid, "title": "Hook", "method": "POST", "url": "http://127.0.0.1:9/x"}
    admin.ok("create_web_hook", hook)
    try:
        dup = admin.call("create_web_hook", hook)
        assert dup == {"code": "web_hook", "description": f"That Web Hook ID already exists: {uid}"}
        bad = admin.call("update_web_hook", {"id": uid, "body": '{"a": "{{ text == }}"}'})
        assert bad["code"] == "web_hook"
        assert bad["description"].startswith(f"Failed to compile macro in body: {uid}: ")
        assert admin.ok("get_web_hook", {"id": uid})["web_hook"]["revision"] == 1  # nothing changed
    finally:
        admin.call("delete_web_hook", {"id": uid})
    auto = admin.call("create_web_hook", {**hook, "id": None, "body": "{{ ) }}"})
    assert auto["code"] == "web_hook" and auto["description"].startswith("Failed to compile macro in body: w")


def test_channel_verbs_speak_of_channels(admin: Api, uid: str) -> None:
    """§13 and core-api.md: ids are generated as `ch…`; refusals say "channel"."""
    made = admin.ok("create_channel", {"title": "Chan " + uid})["channel"]
    try:
        assert made["id"].startswith("ch")
        dup = admin.call("create_channel", {"id": made["id"], "title": "Again"})
        assert dup == {"code": "channel", "description": f"That Channel ID already exists: {made['id']}"}
    finally:
        admin.ok("delete_channel", {"id": made["id"]})
    missing = admin.call("get_channel", {"id": made["id"]})
    assert missing == {"code": "notfound", "description": f"Failed to locate channel: {made['id']}"}
    gone = admin.call("delete_channel", {"id": made["id"]})
    assert gone["code"] == "channel" and gone["description"].startswith("Failed to delete channel: ")
