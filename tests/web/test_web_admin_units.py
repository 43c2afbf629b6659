"""Servers, secrets, web hooks and system pages without a browser: helpers, declarations, templates."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import sqlite

from sundial.auth.privileges import Principal
from sundial.web.fleetview import (
    ServerFilters,
    host_facts,
    install_command,
    jobs_per_server,
    offline_clause,
    sample_facts,
    spark_points,
    summary,
)
from sundial.web.forms import KINDS, Field
from sundial.web.pages.objects import CHANNELS, WEB_HOOKS
from sundial.web.pages.secrets import CREATE_FIELDS, VALUES_FIELD, activity_link, assignment_summary
from sundial.web.pages.system import has_verb
from sundial.web.render import make_environment
from sundial.web.routes import all_pages
from sundial.web.viewer import Viewer

SERVER: dict[str, Any] = {
    "id": "s1", "hostname": "web-7.example.com", "ip": "10.0.0.7", "title": "", "groups": ["main"], "enabled": True,
    "modified": 1_700_000_000.0,
    "info": {"os": {"distro": "Debian GNU/Linux", "release": "12", "arch": "x64"}, "release": "6.1.0",
             "cpu": {"combo": "AMD EPYC", "cores": 4}, "memory": {"total": 8 * 1024**3}, "virt": False,
             "satellite": "0.1.0", "node": "python 3.11.7"},
}


def viewer(groups: list[str] | None = None, admin: bool = True) -> Viewer:
    principal = Principal(kind="user", record={"username": "u"}, privileges={"admin": admin}, groups=groups or [])
    return Viewer(user={"username": "u"}, principal=principal, session={"csrf_token": "t"})


def macros() -> Any:
    return make_environment("test").get_template("macros.html").module


def test_new_pages_are_declared_with_their_privileges() -> None:
    pages = {p.path: p for p in all_pages()}
    assert pages["/servers"].nav == "Fleet" and pages["/servers"].privilege is None
    assert pages["/secrets"].privilege == "admin" and pages["/secrets/{id:str}"].privilege == "admin"
    assert pages["/web_hooks/{id:str}"].template == "web_hook_edit.html"
    assert pages["/channels"].nav == "Configuration"
    assert WEB_HOOKS.verb("create") == "create_web_hook" and CHANNELS.privilege("edit") == "edit_channels"


def test_server_summary_reads_the_latest_quick_row() -> None:
    quick = [{"date": 1, "_qm_cpu_usage": 10.0, "_qm_mem_used": 1024**3}, {"date": 2, "_qm_cpu_usage": 30.5,
                                                                            "_qm_mem_used": 2 * 1024**3}]
    row = summary(SERVER, quick, jobs=2, online=True)
    assert row["label"] == "web-7.example.com" and row["cpu"] == 30.5 and row["jobs"] == 2
    assert row["mem_text"] == "2.0 GB of 8.0 GB" and row["os"] == "Debian GNU/Linux 12 (x64)"
    assert len(row["cpu_points"].split()) == 2
    offline = summary(SERVER, [], jobs=0, online=False)
    assert offline["cpu"] is None and offline["mem_text"] == "" and offline["cpu_points"] == ""


def test_spark_points_scale_to_the_peak_inside_the_box() -> None:
    assert spark_points([5.0]) == ""
    points = [tuple(map(float, p.split(","))) for p in spark_points([0.0, 50.0, 100.0], 100, 20, peak=100).split()]
    assert points[0] == (0.0, 19.0) and points[-1] == (100.0, 1.0)
    assert all(0 <= y <= 20 for _, y in points)


def test_host_and_sample_facts() -> None:
    facts = dict(host_facts(SERVER))
    assert facts["CPU"] == "AMD EPYC · 4 cores" and facts["Virtualisation"] == "None (bare metal)"
    assert facts["Memory"] == "8.0 GB" and "Kernel" in facts
    sample = {"date": 5.0, "data": {"uptime_sec": 3600, "load": [0.5, 0.25, 0.125, 9],
                                    "mounts": {"root": {"mount": "/", "type": "ext4", "size": 100, "used": 40,
                                                        "use": 40.0}, "bad": {"mount": "/x"}}}}
    shown = sample_facts(sample)
    assert shown["load"] == [0.5, 0.25, 0.12] and shown["uptime"] == 3600
    assert [m["mount"] for m in shown["mounts"]] == ["/"]
    assert sample_facts(None) == {"date": None, "uptime": None, "load": [], "mounts": []}


def test_server_filters_in_memory_and_in_sql() -> None:
    assert ServerFilters(text="WEB-7").matches(SERVER) and ServerFilters(text="10.0.0").matches(SERVER)
    assert not ServerFilters(group="db").matches(SERVER) and not ServerFilters(text="nope").matches(SERVER)
    clause = offline_clause(ServerFilters(text="50%_off", group="web_1"), viewer(groups=["ops"], admin=False))
    sql = str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    assert "online = 0" in sql and "ESCAPE '/'" in sql and "50/%/_off" in sql  # LIKE wildcards escaped
    assert "' ops '" in sql  # group limit of a limited viewer
    assert "' ops '" not in str(offline_clause(ServerFilters(), viewer()).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_jobs_per_server_and_install_command() -> None:
    assert jobs_per_server([{"server": "a"}, {"server": "a"}, {"server": ""}, {}]) == {"a": 2}
    assert install_command("http://c:5522", "ab12") == 'curl -s "http://c:5522/api/app/satellite/install?t=ab12" | sh'


def test_pairs_field_renders_rows_and_never_a_secret_value() -> None:
    assert "pairs" in KINDS
    html = str(macros().field(VALUES_FIELD, [{"name": "DB_PASS", "value": "must-not-appear"}], [], True))
    assert "DB_PASS" in html and "must-not-appear" not in html
    assert 'aria-label="Variable 1"' in html and "data-pair-template" in html and "required" in html
    headers = Field("headers", "Headers", kind="pairs", pair_labels=("Header", "Value"))
    shown = str(macros().field(headers, [{"name": "X-A", "value": '"><script>alert(1)</script>'}], [], True))
    assert "<script>alert" not in shown and "&#34;&gt;&lt;script&gt;" in shown
    assert "Add header" in shown


def test_secret_helpers_and_fields() -> None:
    assert assignment_summary({"events": ["a", "b"], "plugins": ["p"]}) == "2 events, 1 plugin"
    assert assignment_summary({"categories": ["c"], "web_hooks": ["w", "x"]}) == "1 category, 2 web hooks"
    assert assignment_summary({}) == "Nothing"
    assert activity_link("z1") == "/activity?query=action%3Asecret_access+z1"
    assert [f.name for f in CREATE_FIELDS][-1] == "fields" and VALUES_FIELD.secret


def test_system_page_finds_registered_verbs() -> None:
    assert has_verb("admin_rotate_secret_key") and has_verb("get_internal_jobs")
    assert not has_verb("no_such_verb")


def test_new_templates_escape_what_they_show() -> None:
    env = make_environment("test")
    payload = "\" onfocus=\"x\" '<b>"
    base: dict[str, Any] = {"viewer": None, "user": None, "can": lambda _p: True, "csrf_token": "", "nav": [],
                            "app_name": "S", "theme": "", "current_path": "/", "force_password_change": False,
                            "title": payload}
    meta = {"id": "z1", "title": payload, "names": ["A"], "enabled": True}
    html = env.get_template("secret_edit.html").render(
        **base, item=meta, fields=[], values_field=VALUES_FIELD, names=["A"], name_rows=[{"name": "A"}],
        options={}, activity_link="/activity", decrypt_params={"id": "z1", "title": payload})
    assert "<b>" not in html and 'onfocus="x"' not in html
    assert "data-params='{\"id\": \"z1\", \"title\": \"\\\" onfocus=\\\"x\\\" \\u0027\\u003cb\\u003e\"}'" in html
