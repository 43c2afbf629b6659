"""Key rotation wall time, warm or cold (right after a conductor restart).

    .venv/bin/python bench/rotation.py [--secrets 1000] [--restart] [--settle 0] [--src DIR] [--json]

Starts a throw-away conductor (SQLite, temporary home), creates `--secrets` secrets (two fields
each) with an admin session, then, with `--restart`, stops it and starts it again on the same
home so no old-key derivation is in memory (the cold case). After `--settle` seconds it calls
`admin_rotate_secret_key` with the admin password and reports the wall time until the
rotation's internal job is gone and every secret decrypts to its values again (the figure
scalebench's secret_rotation phase judges, < 30 s for 1,000). `--src` runs the conductor from
another source tree (e.g. an exported older commit) to compare before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(home: Path, port: int, src: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "XYOPS_"))}
    if src:
        env["PYTHONPATH"] = src
    argv = [sys.executable, "-m", "sundial", "start", "--foreground", "--home", str(home), "--port", str(port),
            "--set", "User.use_csrf=false", "--set", "local_satellite.enabled=false"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(600):
        try:
            if httpx.post(f"http://127.0.0.1:{port}/api/app/ping/v1", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise SystemExit("conductor did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def fields(i: int) -> list[dict[str, str]]:
    return [{"name": "USER", "value": f"user-{i}"}, {"name": "PASS", "value": f"pw-{i}-" + "x" * 24}]


async def call(cl: httpx.AsyncClient, verb: str, params: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = (await cl.post(f"/api/app/{verb}/v1", json=params)).json()
    if reply.get("code") != 0:
        raise RuntimeError(f"{verb}: {reply}")
    return reply


def session(url: str) -> httpx.AsyncClient:
    reply = httpx.post(url + "/api/user/login", json={"username": "admin", "password": "admin"})
    sid = reply.json().get("session_id") or reply.cookies.get("session_id")
    return httpx.AsyncClient(base_url=url, headers={"X-Session-ID": str(sid)}, timeout=300,
                             limits=httpx.Limits(max_connections=16))


async def bounded(count: int, work: Any, concurrency: int = 16) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with gate:
            return await work(i)
    return await asyncio.gather(*(one(i) for i in range(count)))


async def create(url: str, count: int) -> list[str]:
    async with session(url) as cl:
        async def make(i: int) -> str:
            reply = await call(cl, "create_secret", {"title": f"rot {i}", "fields": fields(i)})
            return str(reply["secret"]["id"])
        return await bounded(count, make)


async def rotate(url: str, ids: list[str]) -> dict[str, float]:
    async with session(url) as cl:
        t0 = time.perf_counter()
        job = (await call(cl, "admin_rotate_secret_key", {"password": "admin"})).get("id")
        while True:
            rows = (await call(cl, "get_internal_jobs", {})).get("rows") or []
            if not any(row.get("id") == job for row in rows):
                break
            await asyncio.sleep(0.1)
        t_job = time.perf_counter()

        async def check(i: int) -> None:
            got = (await call(cl, "decrypt_secret", {"id": ids[i]}))["fields"]
            if got != fields(i):
                raise RuntimeError(f"decrypt mismatch for {ids[i]}")
        await bounded(len(ids), check)
        return {"internal_job_done_s": round(t_job - t0, 2), "all_decrypted_s": round(time.perf_counter() - t0, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--restart", action="store_true", help="rotate right after a restart (cold)")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait before rotating")
    parser.add_argument("--src", help="PYTHONPATH for the conductor (another source tree)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home, port = Path(tempfile.mkdtemp(prefix="sundial-rot-")), free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(home, port, args.src)
    try:
        t0 = time.perf_counter()
        ids = asyncio.run(create(url, args.secrets))
        created = round(time.perf_counter() - t0, 2)
        if args.restart:
            stop(proc)
            proc = start(home, port, args.src)
        time.sleep(args.settle)
        result = {"secrets": args.secrets, "cold": args.restart, "settle_s": args.settle, "create_s": created,
                  **asyncio.run(rotate(url, ids))}
    finally:
        stop(proc)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
