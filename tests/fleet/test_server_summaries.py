"""get_server_summaries and get_multiple `servers` with the folder's local satellite online."""

from __future__ import annotations

from fleet_peer import wait_until

from harness import Api


def test_local_satellite_is_counted(fleet_admin: Api) -> None:
    wait_until(lambda: fleet_admin.call("get_active_server", {"id": "local"}).get("code") == 0, 40, "local")
    summaries = wait_until(lambda: (s := fleet_admin.ok("get_server_summaries")["summaries"])["os_platform"] and s,
                           20, "the local satellite's platform in the summaries")
    assert summaries["os_platform"].get("linux", 0) >= 1
    assert sum(summaries["os_arch"].values()) >= 1
    assert all(int(cores) > 0 for cores in summaries["cpu_cores"])
    servers = fleet_admin.ok("get_multiple", {"servers": 1})["servers"]
    assert servers["local"]["id"] == "local" and "delete" not in servers["local"]
