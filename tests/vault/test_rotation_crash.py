"""kill -9 at every step of both key rotations: the conductor starts again and every secret decrypts.

The conductor is started with `SUNDIAL_FAULT_INJECT=rotate:<step>`, which makes it exit with
137 (no cleanup, like kill -9) at that step of the rotation. Each crash is followed by a
restart that must (1) start, (2) decrypt every secret to its value through the API, (3) show
an integrity canary naming the key in force (the one in overrides.json) and opening with it,
(4) have finished or discarded the rotation deterministically: the old key when the crash
came before the commit, the new key from the commit on, and no pending marker left.

To keep the run short, each model is one chain on one home: the restart after crash N is
the conductor that takes crash N+1. The chains run side by side.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import sqlite3
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import PG_DB, PG_HOST, Api, ConductorProcess, login, postgres_reachable

pytestmark = pytest.mark.slow

FAULT = "SUNDIAL_FAULT_INJECT"
STEPS_A = ("pause", "flush", "abort", "drain", "prepare", "mid_commit", "commit", "hooks", "persist", "done")
# Model B runs the same quiesce code as model A (its steps are covered there).
STEPS_B = ("prepare", "mid_commit", "commit", "hooks", "persist", "done")
STEPS_PG = ("mid_commit", "commit")
COMMITTED = {"commit", "hooks", "persist", "done"}  # from here on the new key must be in force
START_TIMEOUT = 180  # generous: on a busy 2-core host a cold conductor start can take half a minute


@functools.lru_cache(maxsize=64)
def reference_fingerprint(key: str) -> str:
    label = b"sundial/key-fingerprint/v1"
    stretched = hashlib.scrypt(key.encode(), salt=label, n=16384, r=8, p=1, dklen=32)
    return hashlib.sha256(label + b"\x00" + stretched).hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _derive(key: str, salt: bytes) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)


def reference_open(enc: dict[str, Any], aad: str, key: str) -> bytes:
    """The spec's format, computed here (records sharing a write salt share one derivation)."""
    raw = {k: base64.b64decode(enc[k]) for k in ("salt", "iv", "tag", "ct")}
    return AESGCM(_derive(key, raw["salt"])).decrypt(raw["iv"], raw["ct"] + raw["tag"], aad.encode())


@dataclass
class Chain:
    """One conductor home taken through a crash at each step of one rotation model."""

    proc: ConductorProcess
    model: str
    values: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(json.loads((self.proc.home / "conf" / "overrides.json").read_text())["secret_key"])

    def records(self, prefix: str) -> dict[str, Any]:
        if self.proc.backend == "sqlite":
            with sqlite3.connect(self.proc.home / "data" / "sundial.db") as db:
                rows = db.execute("SELECT key, value FROM records WHERE key LIKE ?", (prefix + "%",)).fetchall()
            return {key: json.loads(value) for key, value in rows}
        sql = f"SELECT key, value::text FROM \"{self.proc.schema}\".records WHERE key LIKE '{prefix}%'"
        out = subprocess.run(["psql", "-h", PG_HOST, "-U", "postgres", "-d", PG_DB, "-At", "-F", "\t", "-c", sql],
                             capture_output=True, text=True, check=True).stdout
        return {k: json.loads(v) for k, v in (line.split("\t", 1) for line in out.splitlines() if line)}

    def check(self, label: str, ok: bool) -> None:
        if not ok:
            self.failures.append(f"{self.model} {label}")

    def verify(self, api: Api, after: str, old_key: str | None, new_key: str | None) -> None:
        """The state a crash at `after` must leave, seen through a freshly started conductor."""
        key = self.key
        if old_key is not None:
            expect_new = after in COMMITTED
            self.check(f"after {after}: key in force is the {'new' if expect_new else 'old'} one",
                       (key != old_key) == expect_new and (new_key is None or not expect_new or key == new_key))
        canary = self.records("global/key_canary").get("global/key_canary") or {}
        self.check(f"after {after}: canary names the key in force", canary.get("fingerprint") ==
                   reference_fingerprint(key))
        self.check(f"after {after}: canary opens with the key in force",
                   reference_open(canary["enc"], "key_canary", key) == b'"sundial-key-canary-v1"')
        self.check(f"after {after}: no pending marker", "global/key_rotation_pending" not in self.records("global/"))
        for sid, value in self.values.items():
            got = api.call("decrypt_secret", {"id": sid})
            self.check(f"after {after}: {sid} decrypts", got.get("fields") == [{"name": "V", "value": value}])
            stored = self.records(f"secrets/{sid}")[f"secrets/{sid}"]
            self.check(f"after {after}: {sid} stored under the key in force",
                       json.loads(reference_open(stored, sid, key)) == [{"name": "V", "value": value}])

    def add_secret(self, api: Api, step: str) -> None:
        sid, value = f"z{self.model.lower()}{step.replace('_', '')}", "crash-" + uuid.uuid4().hex
        api.ok("create_secret", {"id": sid, "title": sid, "fields": [{"name": "V", "value": value}]})
        self.values[sid] = value

    def crash_at(self, api: Api, step: str) -> tuple[str, str | None]:
        """Rotate with the fault armed and see the process die at `step`."""
        old = self.key
        new = uuid.uuid4().hex * 2 if self.model != "A" else None
        try:
            if self.model == "A":
                api.ok("admin_rotate_secret_key", {"password": "admin"})
            else:
                httpx.post(self.proc.url + "/api/maintenance/rotate-key", json={"old_key": old, "new_key": new},
                           headers={"X-Session-ID": api.headers["X-Session-ID"]}, timeout=60)
        except httpx.HTTPError:
            pass  # the conductor died under the request: expected
        assert self.proc.proc is not None
        code = self.proc.proc.wait(START_TIMEOUT)
        self.check(f"{step}: killed at the step (exit {code})", code == 137 and
                   f"FAULT INJECTED at rotate:{step}" in self.proc.console_text())
        return old, new

    def run(self, steps: tuple[str, ...]) -> list[str]:
        try:
            self._run(steps)
        finally:
            self.proc.cleanup()
        return self.failures

    def _run(self, steps: tuple[str, ...]) -> None:
        previous: tuple[str, str | None, str | None] = ("first start", None, None)
        for step in (*steps, None):
            if step is None:
                self.proc.env.pop(FAULT, None)
            else:
                self.proc.env[FAULT] = f"rotate:{step}"
            try:
                self.proc.start(timeout=START_TIMEOUT)
            except RuntimeError as exc:
                self.failures.append(f"{self.model} restart after {previous[0]} failed: {str(exc)[-600:]}")
                return
            api = login(self.proc.url, "admin", "admin")
            self.verify(api, *previous)
            if step is not None:
                self.add_secret(api, step)
                old, new = self.crash_at(api, step)
                previous = (step, old, new)
            api.close()


@pytest.mark.timeout(900)  # ~21 conductor starts; the suite's 120 s default is per ordinary test
def test_kill_at_every_step_of_both_rotation_models(tmp_path: Path) -> None:
    plans = [("A", STEPS_A, "sqlite"), ("B", STEPS_B, "sqlite")]
    if postgres_reachable():
        plans.append(("PG", STEPS_PG, "postgres"))
    with ThreadPoolExecutor(len(plans)) as pool:
        chains = [(Chain(ConductorProcess(backend=backend, home=tmp_path / model), model), steps)
                  for model, steps, backend in plans]
        futures = [pool.submit(chain.run, steps) for chain, steps in chains]
        failures = [failure for future in futures for failure in future.result()]
    assert not failures, "\n".join(failures)
