"""Test Plugin (``[test-plugin]``): a job that exercises the whole pipeline on demand.

It runs for ``duration`` seconds (or a random time within ``"lo-hi"``), reports progress and a log
line each second, and ends as ``action`` asks: Success (with perf, table, html and data output),
Error (999), Warning, Critical, or Crash (exits without reporting, to test crash handling).
``burn`` holds memory and spins the CPU (to see job telemetry move), ``network`` pulls traffic from
the conductor it belongs to, and ``upload`` leaves a small output file for the agent to upload.
"""

from __future__ import annotations

import math
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

from sundial.satellite.plugins.wire import finish, send, text, truthy

__all__ = ["TITLE", "pick_duration", "run"]

TITLE = "Test Plugin"
BURN_BYTES = 64 * 1024 * 1024
BURN_FRACTION = 0.5
MAX_DURATION = 7 * 86400


def pick_duration(value: Any, rng: random.Random | None = None) -> float:
    """A number of seconds, or a random whole number of seconds within ``"lo-hi"``."""
    rng = rng or random.Random()
    raw = str(value if value is not None else 60).strip()
    lo, sep, hi = raw.partition("-")
    try:
        if sep and lo.strip():
            low, high = sorted((float(lo), float(hi)))
            seconds = float(rng.randint(int(low), int(high)))
        else:
            seconds = float(raw)
    except ValueError:
        seconds = 60.0
    return min(max(seconds, 0.0), MAX_DURATION)


class _Network:
    """Downloads from the conductor once per tick; failures are logged, never fatal."""

    def __init__(self, job: dict[str, Any]) -> None:
        import httpx

        opts = job.get("socket_opts") if isinstance(job.get("socket_opts"), dict) else {}
        verify = (opts or {}).get("rejectUnauthorized") is not False
        self.url = str(job.get("base_url") or "").rstrip("/") + "/"
        self.client = httpx.Client(verify=verify, timeout=5.0, trust_env=False)
        self.bytes = 0

    def tick(self) -> None:
        try:
            self.bytes += len(self.client.get(self.url).content)
        except Exception as exc:  # a test of the network must not fail the test of everything else
            text(f"Network test: request to {self.url} failed: {exc}")


class TestRun:
    """One run of the test plugin."""

    __test__ = False  # not a pytest class

    def __init__(self, job: dict[str, Any]) -> None:
        params = job.get("params") if isinstance(job.get("params"), dict) else {}
        self.job, self.params = job, params or {}
        self.duration = pick_duration(self.params.get("duration"))
        self.action = str(self.params.get("action") or "Success").strip().lower()
        self.custom = str(self.params.get("custom") or "")
        self.ballast = bytearray()
        self.network = _Network(job) if truthy(self.params.get("network")) else None

    def main(self) -> None:
        started = time.perf_counter()
        text(f"Test plugin: job {self.job.get('id')} on {socket.gethostname()}, pid {os.getpid()}, "
             f"running for {self.duration:g} s, then: {self.action}")
        if truthy(self.params.get("burn")):
            self.ballast = bytearray(os.urandom(1024)) * (BURN_BYTES // 1024)  # touched, so really resident
        self._ticks()
        if truthy(self.params.get("upload")):
            self._upload()
        self._result(time.perf_counter() - started)

    def _ticks(self) -> None:
        """One step per whole second of the run (the last step may be shorter)."""
        start = time.monotonic()
        second = 0
        while (elapsed := time.monotonic() - start) < self.duration:
            mark = min(self.duration, math.floor(elapsed) + 1)
            if self.ballast:
                _spin((mark - elapsed) * BURN_FRACTION)
            if self.network is not None:
                self.network.tick()
            time.sleep(max(0.0, mark - (time.monotonic() - start)))
            second += 1
            done = min(self.duration, time.monotonic() - start)
            send(progress=round(done / self.duration, 4), status=f"Second {second} of {self.duration:g}")
            text(f"Test plugin: {done:.1f} of {self.duration:g} seconds")

    def _upload(self) -> None:
        name = f"test-output-{self.job.get('id') or os.getpid()}.txt"
        Path(name).write_text(f"Output file from the test plugin, job {self.job.get('id')}.\n", encoding="utf-8")
        send(push={"files": [name]})
        text(f"Test plugin: wrote {name} for upload")

    def _result(self, elapsed: float) -> None:
        if self.action == "crash":
            sys.stderr.write("Test plugin: crashing on purpose, without reporting a result.\n")
            sys.stdout.flush()
            raise SystemExit(1)
        results: dict[str, tuple[int | str, str]] = {"error": (999, "Test plugin: simulated error."),
                   "warning": ("warning", "Test plugin: simulated warning."),
                   "critical": ("critical", "Test plugin: simulated critical failure.")}
        if self.action in results:
            code, description = results[self.action]
            return finish(code, self.custom or description)
        finish(0, "Success!", **self._outputs(elapsed))

    def _outputs(self, elapsed: float) -> dict[str, Any]:
        number = random.randint(1, 1000000)
        data = {"text": "Hello from the test plugin", "hostname": socket.gethostname(), "pid": os.getpid(),
                "random": number, "obj": {"nested": True, "list": [1, 2, 3]}, "custom": self.custom}
        if self.network is not None:
            data["network_bytes"] = self.network.bytes
        rows = [["duration", f"{self.duration:g} s"], ["random", str(number)], ["pid", str(os.getpid())]]
        return {
            "data": data,
            "perf": {"total": round(elapsed, 3), "ticks": round(min(elapsed, self.duration), 3)},
            "table": {"title": "Test Results", "header": ["Item", "Value"], "rows": rows,
                      "caption": "Produced by the test plugin."},
            "html": {"title": "Test Report", "content": "<p>The test plugin ran as asked.</p>",
                     "caption": "Produced by the test plugin."},
        }


def _spin(seconds: float) -> None:
    """Keep one core busy for ``seconds``."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x = (x * 31 + 7) % 1000003


def run(job: dict[str, Any]) -> None:
    """Entry point used by ``python -m sundial.satellite.plugins test-plugin``."""
    TestRun(job).main()
