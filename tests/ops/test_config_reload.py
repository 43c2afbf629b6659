"""Live reload of conf/config.json and overrides.json by a running conductor."""

from __future__ import annotations

import json
import signal

from harness import Api, login, wait_for


def _write(path, text: str) -> None:  # type: ignore[no-untyped-def]
    path.write_text(text, encoding="utf-8")


def _config(admin: Api) -> dict:  # type: ignore[type-arg]
    return admin.ok("admin_get_config")["config"]


def _register(anon: Api, name: str) -> dict:  # type: ignore[type-arg]
    return anon.call("create", {"username": name, "password": "pw-" + name, "email": f"{name}@example.com",
                                "full_name": name}, ns="user")


def test_edited_config_applies_live_and_a_broken_one_is_refused(fresh_conductor):
    proc = fresh_conductor(settings={"config_watch_sec": 1}).start()
    config_file = proc.home / "conf" / "config.json"
    admin, anon = login(proc.url, "admin", "admin"), Api(proc.url)
    try:
        assert _register(anon, "early")["description"] == "Only administrators can create new users."
        _write(config_file, json.dumps({"User": {"free_accounts": True}, "client": {"name": "Reloaded"},
                                        "WebServer": {"bind_address": "127.0.0.2"}}))
        wait_for(lambda: _config(admin)["client"]["name"] == "Reloaded", 30, "the edited config.json to apply")
        assert _register(anon, "later") == {"code": 0}  # behaviour follows, not only the reported value
        assert _config(admin)["WebServer"]["bind_address"] != "127.0.0.2"  # restart-only: kept as running
        wait_for(lambda: "needs a restart to apply: WebServer.bind_address" in proc.log_text("Sundial"), 30,
                 "the restart notice")

        _write(config_file, json.dumps({"User": {"free_accounts": "yes"}, "client": {"name": "Broken"}}))
        wait_for(lambda: "Invalid configuration value for User.free_accounts" in proc.log_text("Error"), 30,
                 "the refusal in Error.log")
        error = proc.log_text("Error")
        assert str(config_file) in error and "the running configuration stays" in error
        assert _config(admin)["client"]["name"] == "Reloaded"

        _write(config_file, '{"client": {"name": ')  # half a file: not JSON
        wait_for(lambda: "is not valid JSON" in proc.log_text("Error"), 30, "the JSON refusal")
        assert _config(admin)["client"]["name"] == "Reloaded"

        # overrides.json written by another tool wins over config.json, and SIGHUP reloads at once
        _write(config_file, json.dumps({"client": {"name": "From file"}}))
        _write(proc.home / "conf" / "overrides.json",
               json.dumps({**json.loads((proc.home / "conf" / "overrides.json").read_text()),
                           "client.name": "From overrides"}))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _config(admin)["client"]["name"] == "From overrides", 30, "the overrides to apply")
        assert _register(anon, "after")["code"] != 0  # free_accounts is gone from config.json again
        assert proc.proc.poll() is None
    finally:
        admin.close()
        anon.close()
