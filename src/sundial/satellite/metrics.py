"""Host metrics for ``hello.info``, the per-minute ``monitor`` payload and per-second ``quickmon``.

Shapes follow satellite-protocol.md §8 key for key, because the conductor's stock monitors and
alerts are expressions over them (``memory.available``, ``cpu.cores``, ``mounts.root.use``,
``stats.network.rx_bytes`` …) and imported xyOps definitions must keep working.

Every method is synchronous and non-blocking in the sleep sense: rates come from the difference
to the previous call (kept per purpose, so the per-second and per-minute rates do not disturb
each other), never from sampling twice with a pause. The minute collection walks every process
and mount, which can take tens of milliseconds (or hang on a dead network mount), so the agent
runs it in a worker thread; the quick sample reads a handful of /proc files.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import platform
import re
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

__all__ = ["MetricsCollector", "host_id", "mount_key", "read_meminfo"]

_PROC = Path("/proc")
_NON_DISK = re.compile(r"^(dm-|md|loop|ram|zram|sr|fd|nbd)")


def host_id(hostname: str | None = None) -> int:
    """Stagger seed: the first 8 hex digits of MD5(hostname) as an unsigned 32-bit integer."""
    name = hostname if hostname is not None else socket.gethostname()
    return int(hashlib.md5(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:8], 16)


def mount_key(mount: str) -> str:
    """``/`` → ``root``, ``/boot/firmware`` → ``boot_firmware`` (the key monitors refer to)."""
    return re.sub(r"\W+", "_", mount.removeprefix("/")) or "root"


def _node_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64", "i686": "ia32",
            "i386": "ia32"}.get(machine, machine)


def _node_platform() -> str:
    return "win32" if sys.platform.startswith("win") else sys.platform.rstrip("0123456789") or sys.platform


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def read_meminfo() -> dict[str, int]:
    """Every ``/proc/meminfo`` field as bytes, lower-cased with the ``Mem`` prefix dropped.

    Fields whose name is not a plain word (``Active(anon)``) are skipped, as xySat does; ``used``
    is added as ``total - available`` since the stock ``mem_used`` monitor reads it.
    """
    info: dict[str, int] = {}
    for line in _read_text(_PROC / "meminfo").splitlines():
        name, _, rest = line.partition(":")
        if not re.fullmatch(r"\w+", name):
            continue
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
        info[name.removeprefix("Mem").lower()] = int(parts[0]) * scale
    if not info:
        vm = psutil.virtual_memory()
        info = {"total": vm.total, "free": vm.free, "available": vm.available}
    info.setdefault("available", info.get("free", 0) + info.get("buffers", 0))
    info["used"] = info.get("total", 0) - info.get("available", 0)
    return info


_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _cpu_vector(times: Any) -> tuple[float, ...]:
    return tuple(float(getattr(times, f, 0.0)) for f in _CPU_FIELDS)


def _cpu_percents(now: tuple[float, ...], before: tuple[float, ...] | None) -> dict[str, float]:
    if before is None:
        return {"user": 0.0, "nice": 0.0, "system": 0.0, "idle": 100.0, "iowait": 0.0, "irq": 0.0,
                "softirq": 0.0, "active": 0.0}
    deltas = [max(0.0, a - b) for a, b in zip(now, before, strict=True)]
    total = sum(deltas) or 1.0
    pct = {f: round(min(100.0, 100.0 * d / total), 2) for f, d in zip(_CPU_FIELDS, deltas, strict=True)}
    pct.pop("steal", None)
    pct["active"] = round(100.0 - pct["idle"], 2)
    return pct


class _Rates:
    """Remembers the previous counters of one purpose to turn cumulative counters into rates."""

    def __init__(self) -> None:
        self.cpu_total: tuple[float, ...] | None = None
        self.cpu_each: list[tuple[float, ...]] | None = None
        self.counters: dict[str, dict[str, float]] = {}
        self.when: dict[str, float] = {}

    def delta(self, name: str, values: Mapping[str, float]) -> tuple[dict[str, float], float]:
        """Per-second rates of ``values`` since the last call with the same ``name``."""
        now = time.monotonic()
        before, then = self.counters.get(name), self.when.get(name)
        self.counters[name], self.when[name] = dict(values), now
        if before is None or then is None or now <= then:
            return {k: 0.0 for k in values}, 0.0
        elapsed = now - then
        return {k: max(0.0, (v - before.get(k, v)) / elapsed) for k, v in values.items()}, elapsed * 1000


class MetricsCollector:
    """Builds the three payloads; keeps the previous counters between calls for rates."""

    def __init__(self, version: str = "0.1.0") -> None:
        self.version = version
        self._minute = _Rates()
        self._second = _Rates()
        self._static_cpu: dict[str, Any] | None = None
        self._os_info: dict[str, Any] | None = None
        self._virt: dict[str, Any] | bool | None = None
        self._started = time.time()
        self._self = psutil.Process()
        self._self_cpu = self._own_cpu()
        self._self_cpu_at = time.monotonic()

    # -- hello -----------------------------------------------------------------------------

    def host_info(self, *, quickmon_enabled: bool = True) -> dict[str, Any]:
        """``hello.info``: the static facts of this host."""
        info: dict[str, Any] = {
            "satellite": self.version,
            "node": f"python {platform.python_version()}",
            "booted": psutil.boot_time(),
            "arch": _node_arch(),
            "platform": _node_platform(),
            "release": platform.release(),
            "quickmon": bool(quickmon_enabled) and _node_platform() != "win32",
            "features": {"testMonitorPlugin": False, "dockerStats": False},
            "os": self.os_info(),
            "memory": self.hello_memory(),
            "cpu": self.cpu_info(),
            "virt": self.virtualization(),
        }
        ip = _primary_ip()
        if ip:
            info["ip"] = ip
        return info

    def os_info(self) -> dict[str, Any]:
        if self._os_info is None:
            self._os_info = _os_info()
        return dict(self._os_info)

    def hello_memory(self) -> dict[str, int]:
        """The summarised memory block of ``hello`` (systeminformation's field names)."""
        mem = read_meminfo()
        total, avail = mem.get("total", 0), mem.get("available", 0)
        buffers, cached, slab = mem.get("buffers", 0), mem.get("cached", 0), mem.get("slab", 0)
        swap_total, swap_free = mem.get("swaptotal", 0), mem.get("swapfree", 0)
        return {"total": total, "free": mem.get("free", 0), "used": total - mem.get("free", 0),
                "active": total - avail, "available": avail, "buffers": buffers, "cached": cached,
                "slab": slab, "buffcache": buffers + cached + slab, "reclaimable": mem.get("sreclaimable", 0),
                "swaptotal": swap_total, "swapused": swap_total - swap_free, "swapfree": swap_free,
                "writeback": mem.get("writeback", 0), "dirty": mem.get("dirty", 0)}

    def cpu_info(self) -> dict[str, Any]:
        if self._static_cpu is None:
            self._static_cpu = _cpu_static()
        return dict(self._static_cpu)

    def virtualization(self) -> dict[str, Any] | bool:
        if self._virt is None:
            self._virt = _detect_virt()
        return self._virt

    # -- per second ------------------------------------------------------------------------

    def quick_sample(self) -> dict[str, Any]:
        """``quickmon``: memory, CPU load, cumulative disk and network bytes."""
        return {"mem": read_meminfo(), "cpu": self._cpu_load(self._second), "fs": _disk_bytes(),
                "net": _net_bytes()}

    def _cpu_load(self, rates: _Rates) -> dict[str, Any]:
        total = _cpu_vector(psutil.cpu_times())
        each = [_cpu_vector(t) for t in psutil.cpu_times(percpu=True)]
        before_each = rates.cpu_each if rates.cpu_each and len(rates.cpu_each) == len(each) else None
        totals = _cpu_percents(total, rates.cpu_total)
        cpus = [_cpu_percents(v, before_each[i] if before_each else None) for i, v in enumerate(each)]
        rates.cpu_total, rates.cpu_each = total, each
        return {"avgLoad": os.getloadavg()[0], "currentLoad": totals["active"], "cpus": cpus, "totals": totals}

    # -- per minute ------------------------------------------------------------------------

    def monitor_payload(self, *, server_id: str, jobs: int = 0, monitoring_enabled: bool = True,
                        job_pids: Mapping[int, str] | None = None) -> dict[str, Any]:
        """The ServerMonitorData envelope; a dummy record (no heavy parts) when monitoring is off."""
        data = self._base_data(jobs)
        if monitoring_enabled:
            data.update(self._full_data(job_pids or {}))
        else:
            data.update({"dummy": True, "os": {}, "memory": {}, "cpu": {}, "mounts": {}, "interfaces": {},
                         "processes": {}, "commands": {}})
            data["stats"] = {"io": {}, "fs": {}, "network": {}}
        return {"version": "1.0", "date": time.time(), "server": server_id,
                "hostname": socket.gethostname(), "data": data}

    def _base_data(self, jobs: int) -> dict[str, Any]:
        return {"uptime_sec": max(0.0, time.time() - psutil.boot_time()), "arch": _node_arch(),
                "platform": _node_platform(), "release": platform.release(), "load": list(os.getloadavg()),
                "jobs": int(jobs), "process": self._self_stats()}

    def _full_data(self, job_pids: Mapping[int, str]) -> dict[str, Any]:
        started = time.perf_counter()
        cpu = {**self.cpu_info(), **self._cpu_load(self._minute)}
        interfaces, network = self._network()
        conns = _connections()
        network.update(_conn_stats(conns))
        data = {"os": self.os_info(), "memory": read_meminfo(), "cpu": cpu, "mounts": _mounts(),
                "stats": {"io": self._disk_io(), "fs": self._disk_fs(), "network": network},
                "interfaces": interfaces, "conns": conns, "processes": _processes(job_pids)}
        data["metrics"] = {"collect_ms": round((time.perf_counter() - started) * 1000, 3)}
        return data

    def _own_cpu(self) -> float:
        t = self._self.cpu_times()
        return float(t.user + t.system)

    def _self_stats(self) -> dict[str, Any]:
        """The agent's own footprint; cpu is % of one core since the previous minute sample."""
        now_cpu, now = self._own_cpu(), time.monotonic()
        elapsed = max(1e-6, now - self._self_cpu_at)
        pct = 100.0 * (now_cpu - self._self_cpu) / elapsed
        self._self_cpu, self._self_cpu_at = now_cpu, now
        return {"pid": os.getpid(), "started": self._started, "mem": self._self.memory_info().rss,
                "cpu": round(max(0.0, pct), 3)}

    def _disk_io(self) -> dict[str, Any]:
        counters = _whole_disk_counters()
        r, w = counters.get("read_count", 0.0), counters.get("write_count", 0.0)
        rt, wt = counters.get("read_time", 0.0), counters.get("write_time", 0.0)
        rates, ms = self._minute.delta("io", {"r": r, "w": w, "rt": rt, "wt": wt})
        out = {"rIO": r, "wIO": w, "tIO": r + w, "rIO_sec": rates["r"], "wIO_sec": rates["w"],
               "tIO_sec": rates["r"] + rates["w"], "rWaitTime": rt, "wWaitTime": wt, "tWaitTime": rt + wt,
               "ms": ms}
        # wait time grows in ms per elapsed second, so ms/s ÷ 10 is the percentage of time waiting
        out.update({"rWaitPercent": rates["rt"] / 10.0, "wWaitPercent": rates["wt"] / 10.0})
        out["tWaitPercent"] = out["rWaitPercent"] + out["wWaitPercent"]
        return out

    def _disk_fs(self) -> dict[str, Any]:
        counters = _whole_disk_counters()
        rx, wx = counters.get("read_bytes", 0.0), counters.get("write_bytes", 0.0)
        rates, ms = self._minute.delta("fs", {"rx": rx, "wx": wx})
        return {"rx": rx, "wx": wx, "tx": rx + wx, "rx_sec": rates["rx"], "wx_sec": rates["wx"],
                "tx_sec": rates["rx"] + rates["wx"], "ms": ms}

    def _network(self) -> tuple[dict[str, Any], dict[str, Any]]:
        interfaces = _interfaces()
        stats = psutil.net_io_counters(pernic=True)
        network: dict[str, Any] = {"ifaces": [], "rx_bytes": 0, "rx_dropped": 0, "rx_errors": 0,
                                   "tx_bytes": 0, "tx_dropped": 0, "tx_errors": 0, "rx_sec": 0.0, "tx_sec": 0.0}
        for name, iface in interfaces.items():
            io = stats.get(name)
            if io is None:
                continue
            row = {"rx_bytes": io.bytes_recv, "rx_dropped": io.dropin, "rx_errors": io.errin,
                   "tx_bytes": io.bytes_sent, "tx_dropped": io.dropout, "tx_errors": io.errout}
            rates, ms = self._minute.delta(f"net:{name}", {"rx": io.bytes_recv, "tx": io.bytes_sent})
            row.update({"rx_sec": rates["rx"], "tx_sec": rates["tx"], "ms": ms})
            iface.update(row)
            if not iface["internal"]:
                network["ifaces"].append(name)
                for key in ("rx_bytes", "rx_dropped", "rx_errors", "tx_bytes", "tx_dropped", "tx_errors",
                            "rx_sec", "tx_sec"):
                    network[key] += row[key]
        return interfaces, network


# --------------------------------------------------------------------------------------------
# Collectors (module functions: stateless, each one thing)
# --------------------------------------------------------------------------------------------


def _os_info() -> dict[str, Any]:
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        release = {}
    hostname = socket.gethostname()
    return {"platform": platform.system() or _node_platform().capitalize(),
            "distro": release.get("NAME", platform.system()), "release": release.get("VERSION_ID", ""),
            "codename": release.get("VERSION_CODENAME", ""), "kernel": platform.release(),
            "arch": _node_arch(), "hostname": hostname, "fqdn": socket.getfqdn(hostname),
            "codepage": "UTF-8", "logofile": release.get("ID", ""), "serial": "", "build": "",
            "servicepack": "", "uefi": Path("/sys/firmware/efi").exists()}


def _cpuinfo_fields() -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in _read_text(_PROC / "cpuinfo").splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _cache_sizes() -> dict[str, int]:
    caches = {"l1d": 0, "l1i": 0, "l2": 0, "l3": 0}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        level, kind = _read_text(index / "level").strip(), _read_text(index / "type").strip()
        size = _read_text(index / "size").strip().upper()
        mult = 1024 if size.endswith("K") else 1024 * 1024 if size.endswith("M") else 1
        digits = size.rstrip("KMB")
        if not digits.isdigit():
            continue
        key = f"l{level}" + ("d" if kind == "Data" else "i" if kind == "Instruction" else "")
        if key in caches:
            caches[key] = int(digits) * mult
    return caches


def _ghz(mhz: float | None) -> float:
    return round(mhz / 1000, 2) if mhz else 0.0


def _cpu_static() -> dict[str, Any]:
    info = _cpuinfo_fields()
    vendor = info.get("vendor_id", "")
    manufacturer = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(vendor, vendor or "unknown")
    brand = re.sub(r"\((R|TM|tm|r)\)|CPU|@.*$|Processor", "", info.get("model name", "")).strip()
    brand = re.sub(r"\s+", " ", brand.replace(manufacturer, "", 1)).strip()
    freq = psutil.cpu_freq() if hasattr(psutil, "cpu_freq") else None
    logical = psutil.cpu_count() or 1
    return {"manufacturer": manufacturer, "brand": brand or platform.processor(), "vendor": vendor,
            "family": info.get("cpu family", ""), "model": info.get("model", ""),
            "stepping": info.get("stepping", ""), "revision": "", "voltage": "",
            "speed": _ghz(freq.current if freq else 0), "speedMin": _ghz(freq.min if freq else 0),
            "speedMax": _ghz(freq.max if freq else 0), "governor": _read_text(
                Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")).strip(),
            "cores": logical, "physicalCores": psutil.cpu_count(logical=False) or logical,
            "performanceCores": psutil.cpu_count(logical=False) or logical, "efficiencyCores": 0,
            "processors": 1, "socket": "", "flags": info.get("flags", ""),
            "virtualization": "hypervisor" in info.get("flags", "").split(), "cache": _cache_sizes()}


def _detect_virt() -> dict[str, Any] | bool:
    """Vendor from DMI or container markers; cloud metadata lookups are left out (no network here)."""
    dmi = Path("/sys/class/dmi/id")
    for name in ("board_vendor", "sys_vendor", "product_name"):
        vendor = _read_text(dmi / name).strip()
        if vendor:
            return {"vendor": vendor, "cloud": True} if name == "board_vendor" else {"vendor": vendor}
    if Path("/.dockerenv").exists() or re.search(r"\bdocker\b", _read_text(_PROC / "self/cgroup"), re.I):
        return {"vendor": "Docker"}
    if "kubepods" in _read_text(_PROC / "self/cgroup"):
        return {"vendor": "Kubernetes"}
    return False


def _primary_ip() -> str:
    """The address of the default-route interface, unless it is loopback or link-local."""
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith(("127.", "169.254.")):
                return str(addr.address)
    return ""


def _is_whole_disk(name: str) -> bool:
    if _NON_DISK.match(name):
        return False
    return not Path(f"/sys/class/block/{name}/partition").exists()


def _whole_disk_counters() -> dict[str, float]:
    totals: dict[str, float] = {}
    try:
        per_disk = psutil.disk_io_counters(perdisk=True) or {}
    except (OSError, RuntimeError):
        return totals
    for name, io in per_disk.items():
        if not _is_whole_disk(name):
            continue
        for key in ("read_count", "write_count", "read_bytes", "write_bytes", "read_time", "write_time"):
            totals[key] = totals.get(key, 0.0) + float(getattr(io, key, 0))
    return totals


def _disk_bytes() -> dict[str, int]:
    totals = _whole_disk_counters()
    return {"rx": int(totals.get("read_bytes", 0)), "wx": int(totals.get("write_bytes", 0))}


def _external_ifaces() -> list[str]:
    names = []
    for name, addrs in psutil.net_if_addrs().items():
        internal = any(a.address.startswith("127.") or a.address == "::1" for a in addrs)
        if re.fullmatch(r"\w+", name) and not internal:
            names.append(name)
    return names


def _net_bytes() -> dict[str, int]:
    stats = psutil.net_io_counters(pernic=True)
    rx = tx = 0
    for name in _external_ifaces():
        io = stats.get(name)
        if io is not None:
            rx, tx = rx + io.bytes_recv, tx + io.bytes_sent
    return {"rx": rx, "tx": tx}


def _default_iface() -> str:
    for line in _read_text(_PROC / "net/route").splitlines()[1:]:
        cols = line.split()
        if len(cols) > 1 and cols[1] == "00000000":
            return cols[0]
    return ""


def _prefix_len(netmask: str | None) -> str:
    return netmask or ""


def _interfaces() -> dict[str, dict[str, Any]]:
    addrs, stats = psutil.net_if_addrs(), psutil.net_if_stats()
    default = _default_iface()
    out: dict[str, dict[str, Any]] = {}
    for name, entries in addrs.items():
        ip4 = next((a for a in entries if a.family == socket.AF_INET), None)
        ip6 = next((a for a in entries if a.family == socket.AF_INET6), None)
        mac = next((a.address for a in entries if a.family == psutil.AF_LINK), "")
        st = stats.get(name)
        internal = any(a.address.startswith("127.") or a.address == "::1" for a in entries)
        out[name] = {
            "iface": name, "ifaceName": name, "default": name == default,
            "ip4": ip4.address if ip4 else "", "ip4subnet": _prefix_len(ip4.netmask if ip4 else None),
            "ip6": ip6.address.split("%")[0] if ip6 else "", "ip6subnet": _prefix_len(ip6.netmask if ip6 else None),
            "mac": mac, "internal": internal, "virtual": not Path(f"/sys/class/net/{name}/device").exists(),
            "operstate": "up" if st and st.isup else "down", "type": "wired",
            "duplex": {2: "full", 1: "half"}.get(int(st.duplex), "") if st else "", "mtu": st.mtu if st else 0,
            "speed": st.speed if st else 0, "dhcp": False, "dnsSuffix": "", "ieee8021xAuth": "",
            "ieee8021xState": "", "carrierChanges": _carrier_changes(name),
        }
    return out


def _carrier_changes(name: str) -> int:
    text = _read_text(Path(f"/sys/class/net/{name}/carrier_changes")).strip()
    return int(text) if text.isdigit() else 0


def _addr(addr: Any) -> str:
    if not addr:
        return ""
    ip, port = addr.ip, addr.port
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _connections() -> list[dict[str, Any]]:
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return []
    out = []
    for c in conns:
        kind = "tcp" if c.type == socket.SOCK_STREAM else "udp"
        state = {"NONE": "UNCONNECTED"}.get(c.status, c.status)
        out.append({"type": kind, "state": state, "local_addr": _addr(c.laddr), "remote_addr": _addr(c.raddr),
                    "pid": c.pid or 0, "bytes_in": 0, "bytes_out": 0})
    return out


def _conn_stats(conns: list[dict[str, Any]]) -> dict[str, Any]:
    states: dict[str, int] = {"established": 0}
    for conn in conns:
        key = str(conn["state"]).lower()
        states[key] = states.get(key, 0) + 1
    return {"conns": len(conns), "states": states}


def _mounts() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        out[mount_key(part.mountpoint)] = {
            "fs": part.device, "type": part.fstype, "size": usage.total, "used": usage.used,
            "available": usage.free, "use": usage.percent, "mount": part.mountpoint,
            "rw": "rw" in part.opts.split(","),
        }
    return out


_SCHED_CLASS = {0: "Other", 1: "FIFO", 2: "RR", 3: "Batch", 5: "Idle", 6: "Deadline"}
_STATES = {psutil.STATUS_RUNNING: "Running", psutil.STATUS_SLEEPING: "Sleeping",
           psutil.STATUS_DISK_SLEEP: "Sleeping", psutil.STATUS_IDLE: "Idle", psutil.STATUS_ZOMBIE: "Zombie",
           psutil.STATUS_STOPPED: "Stopped", psutil.STATUS_TRACING_STOP: "Stopped", psutil.STATUS_DEAD: "Dead"}
_PROC_ATTRS = ["pid", "ppid", "username", "cpu_times", "memory_info", "create_time", "status", "nice",
               "terminal", "memory_percent", "gids", "num_threads", "cmdline", "name"]


def _group_name(gid: int, cache: dict[int, str]) -> str:
    if gid not in cache:
        try:
            cache[gid] = grp.getgrgid(gid).gr_name
        except KeyError:
            cache[gid] = str(gid)
    return cache[gid]


def _sched_class(pid: int) -> str:
    try:
        return _SCHED_CLASS.get(os.sched_getscheduler(pid), "Unknown")
    except OSError:
        return "Unknown"


def _process_row(p: dict[str, Any], now: float, ncpu: int, groups: dict[int, str]) -> dict[str, Any]:
    """One ``processes.list`` row; cpu is the lifetime average like ``ps``, divided by core count."""
    times, mem = p.get("cpu_times"), p.get("memory_info")
    cpu_secs = float(times.user + times.system) if times else 0.0
    started = float(p.get("create_time") or now)
    age = max(0.0, now - started)
    gids = p.get("gids")
    return {
        "pid": p["pid"], "parentPid": p.get("ppid") or 0, "user": p.get("username") or "",
        "cpu": round(100.0 * cpu_secs / age / ncpu, 2) if age > 0 else 0.0,
        "memRss": mem.rss if mem else 0, "age": int(age), "state": _STATES.get(p.get("status") or "", "Unknown"),
        "priority": 20 + int(p.get("nice") or 0), "nice": int(p.get("nice") or 0),
        "memVsz": mem.vms if mem else 0, "tty": p.get("terminal") or "?",
        "mem": round(float(p.get("memory_percent") or 0.0), 2), "class": _sched_class(p["pid"]),
        "group": _group_name(gids.real, groups) if gids else "", "threads": p.get("num_threads") or 0,
        "time": int(cpu_secs), "command": " ".join(p.get("cmdline") or []) or f"[{p.get('name') or ''}]",
        "started": int(started),
    }


def _processes(job_pids: Mapping[int, str]) -> dict[str, Any]:
    now, ncpu = time.time(), psutil.cpu_count() or 1
    groups: dict[int, str] = {}
    info: dict[str, Any] = {"list": [], "all": 0}
    for proc in psutil.process_iter(attrs=_PROC_ATTRS, ad_value=None):
        with contextlib.suppress(psutil.Error, KeyError, TypeError):
            row = _process_row(proc.info, now, ncpu, groups)
            if row["pid"] in job_pids:
                row["job"] = job_pids[row["pid"]]
            state = row["state"].lower()
            info[state] = info.get(state, 0) + 1
            info["all"] += 1
            info["list"].append(row)
    return info
