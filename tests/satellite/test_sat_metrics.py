"""Metrics payloads have the shape the conductor's stock monitors and alerts read."""

from __future__ import annotations

import hashlib
import os

import orjson

from sundial.satellite.metrics import MetricsCollector, host_id, mount_key, read_meminfo


def test_host_id_and_mount_keys() -> None:
    assert host_id("web1") == int(hashlib.md5(b"web1").hexdigest()[:8], 16)
    assert mount_key("/") == "root" and mount_key("/boot/firmware") == "boot_firmware"
    assert mount_key("/mnt/my-disk") == "mnt_my_disk"


def test_meminfo_fields_are_bytes_with_used_and_available() -> None:
    mem = read_meminfo()
    assert mem["total"] > mem["available"] > 0 and mem["used"] == mem["total"] - mem["available"]
    assert "memtotal" not in mem and all(isinstance(v, int) for v in mem.values())


def test_hello_info_shape() -> None:
    info = MetricsCollector("1.2.3").host_info()
    assert info["satellite"] == "1.2.3" and info["platform"] == "linux" and info["arch"]
    assert info["cpu"]["cores"] == os.cpu_count()
    assert {"total", "free", "used", "active", "available", "swaptotal"} <= info["memory"].keys()
    assert {"platform", "distro", "release", "kernel", "arch", "hostname"} <= info["os"].keys()
    assert info["os"]["platform"] == "Linux"
    assert info["virt"] is False or "vendor" in info["virt"]
    orjson.dumps(info)


def test_quick_sample_shape_and_rates_from_previous_call() -> None:
    collector = MetricsCollector()
    first = collector.quick_sample()
    assert first["cpu"]["totals"]["idle"] == 100.0, "first call has no previous counters"
    sum(i * i for i in range(200_000))
    second = collector.quick_sample()
    assert set(second) == {"mem", "cpu", "fs", "net"}
    assert {"avgLoad", "currentLoad", "cpus", "totals"} <= second["cpu"].keys()
    assert len(second["cpu"]["cpus"]) == os.cpu_count()
    assert set(second["fs"]) == {"rx", "wx"} and set(second["net"]) == {"rx", "tx"}
    assert 0.0 <= second["cpu"]["currentLoad"] <= 100.0


def test_monitor_payload_shape_for_stock_monitors() -> None:
    collector = MetricsCollector()
    payload = collector.monitor_payload(server_id="s1", jobs=2, job_pids={os.getpid(): "jtest"})
    assert payload["version"] == "1.0" and payload["server"] == "s1" and isinstance(payload["date"], float)
    data = payload["data"]
    assert len(data["load"]) == 3 and data["jobs"] == 2 and data["uptime_sec"] > 0
    assert data["process"]["pid"] == os.getpid()
    assert data["memory"]["available"] > 0 and data["memory"]["used"] > 0
    assert data["cpu"]["cores"] >= 1 and "iowait" in data["cpu"]["totals"]
    assert "root" in data["mounts"] and 0 <= data["mounts"]["root"]["use"] <= 100
    net = data["stats"]["network"]
    assert {"rx_bytes", "tx_bytes", "conns", "states"} <= net.keys() and "established" in net["states"]
    assert {"rIO", "wIO", "tIO"} <= data["stats"]["io"].keys() and {"rx", "wx"} <= data["stats"]["fs"].keys()
    procs = data["processes"]
    assert procs["all"] == len(procs["list"]) > 0
    mine = next(row for row in procs["list"] if row["pid"] == os.getpid())
    assert mine["job"] == "jtest" and mine["memRss"] > 0 and mine["state"]
    assert isinstance(data["interfaces"], dict) and isinstance(data["conns"], list)
    orjson.dumps(payload)


def test_dummy_payload_when_monitoring_is_disabled() -> None:
    payload = MetricsCollector().monitor_payload(server_id="s1", monitoring_enabled=False)
    data = payload["data"]
    assert data["dummy"] is True and data["processes"] == {} and data["mounts"] == {}
    assert "load" in data and "uptime_sec" in data
