"""Start-up to first answer and idle memory of the conductor (peerbench's definitions).

    python bench/startup.py [--runs 3] [--settle 5] [--local-satellite]

Each run starts `sundial start --foreground` on a free port, times the first `ping` that
answers, logs in and makes one API call (as peerbench does), waits `--settle` seconds and
reads the conductor's RSS with its anonymous/file split (/proc/PID/smaps_rollup) and thread
count. "fresh" runs get a new home (first start: schema, admin, key canary, HTTPS pair);
"warm" runs reuse the home of the first fresh run. Prints one JSON object of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _conductor import free_port  # noqa: E402


def _kib(pid: int, path: str, field: str) -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _memory(pid: int) -> dict[str, Any]:
    return {"rss_MiB": round(_kib(pid, "status", "VmRSS") / 1024, 1),
            "anon_MiB": round(_kib(pid, "smaps_rollup", "Anonymous") / 1024, 1),
            "file_MiB": round((_kib(pid, "status", "RssFile")) / 1024, 1),
            "threads": _kib(pid, "status", "Threads")}


def _first_answer(url: str, proc: subprocess.Popen[bytes], started: float) -> float:
    with httpx.Client(timeout=1) as client:
        while time.perf_counter() - started < 120:
            if proc.poll() is not None:
                raise RuntimeError(f"conductor exited with {proc.returncode}")
            try:
                if client.post(url + "/api/app/ping/v1").json().get("code") == 0:
                    return time.perf_counter() - started
            except (httpx.HTTPError, ValueError):
                time.sleep(0.02)
    raise RuntimeError("no answer within 120 s")


def _login(url: str) -> None:
    with httpx.Client(timeout=30) as client:
        session = client.post(url + "/api/user/login", json={"username": "admin", "password": "admin"}).json()
        client.get(url + "/api/app/get_categories/v1", headers={"X-Session-ID": session.get("session_id", "")})


def run_once(home: Path, settle: float, local_satellite: bool) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, "-m", "sundial", "start", "--foreground", "--home", str(home), "--port", str(port),
            "--set", f"local_satellite.enabled={str(local_satellite).lower()}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "XYOPS_"))}
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        first = _first_answer(url, proc, started)
        _login(url)
        time.sleep(settle)
        return {"first_answer_s": round(first, 3), **_memory(proc.pid)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--local-satellite", action="store_true", help="also spawn the local satellite")
    args = parser.parse_args()
    homes = [Path(tempfile.mkdtemp(prefix="sundial-startup-")) for _ in range(args.runs)]
    try:
        fresh = [run_once(home, args.settle, args.local_satellite) for home in homes]
        warm = [run_once(homes[0], args.settle, args.local_satellite) for _ in range(args.runs)]
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({"fresh": _median(fresh), "warm": _median(warm), "runs": args.runs,
                      "loadavg": os.getloadavg()[0]}, indent=1))


if __name__ == "__main__":
    main()
