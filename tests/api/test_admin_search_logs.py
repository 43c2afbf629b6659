"""admin_search_logs: the last matching rows of a component log, as column objects."""

from __future__ import annotations

import gzip
import time

from harness import Api, wait_for


def test_matching_rows_of_the_transaction_log(admin: Api, uid):
    admin.ok("create_tag", {"id": uid, "title": "Logged " + uid})
    admin.ok("delete_tag", {"id": uid})
    found = wait_for(lambda: (d := admin.ok("admin_search_logs", {"log": "Transaction", "rows": 10,
                                                                  "match": uid, "cols": "code,msg"}))["rows"]
                     and len(d["rows"]) == 2 and d, what="both rows in Transaction.log")
    assert [row["code"] for row in found["rows"]] == ["tag_create", "tag_delete"]
    assert set(found["rows"][0]) == {"code", "msg"} and uid in found["rows"][0]["msg"]
    assert found["list"]["length"] >= 2  # every row of the file, not the matches
    last = admin.ok("admin_search_logs", {"log": "Transaction", "rows": 1, "match": f"tag_(create|delete).*{uid}",
                                          "regex": True})["rows"]
    assert len(last) == 1 and last[0]["code"] == "tag_delete" and last[0]["component"] == "Transaction"
    assert admin.ok("admin_search_logs", {"log": "Transaction", "rows": 5, "match": uid.upper(),
                                          "case": True})["rows"] == []


def test_archived_day_and_missing_logs(admin: Api, conductor):
    day = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400 * 400))
    y, m, d = day.split("-")
    archive = conductor.home / "logs" / "archives" / y / m / d / f"Archived-{day}.log.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(archive, "wt") as handle:
        handle.write("[1.000][old][h][1][Archived][debug][5][first][]\n[2.000][old][h][1][Archived][debug][5][second][]\n")
    got = admin.ok("admin_search_logs", {"log": "Archived", "rows": 10, "date": day, "cols": ["msg"]})
    assert got == {"code": 0, "rows": [{"msg": "first"}, {"msg": "second"}], "list": {"length": 2}}
    assert admin.ok("admin_search_logs", {"log": "NoSuchLog", "rows": 5}) == {"code": 0, "rows": [],
                                                                               "list": {"length": 0}}


def test_bad_parameters(admin: Api):
    def err(params: dict) -> dict:
        return admin.call("admin_search_logs", params)

    assert err({"rows": 5}) == {"code": "api", "description": "Missing parameter: log"}
    assert err({"log": "API"}) == {"code": "api", "description": "Missing parameter: rows"}
    assert err({"log": "../etc/passwd", "rows": 5})["code"] == "api"
    assert err({"log": "API", "rows": 0})["code"] == "api" and err({"log": "API", "rows": 1001})["code"] == "api"
    assert err({"log": "API", "rows": 5, "match": "(", "regex": True})["description"].startswith(
        "Invalid regular expression")
    assert err({"log": "API", "rows": 5, "cols": "msg,nope"}) == {"code": "api",
                                                                   "description": "Unknown log column: nope"}
    assert err({"log": "API", "rows": 5, "date": "yesterday"})["code"] == "api"
