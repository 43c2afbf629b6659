"""The vault service in-process on a real SQLite store: writes, delivery, audit lines, rotation.

The HTTP surface is tested against real conductors in tests/api/test_secrets.py; here the
service is driven directly so timing-sensitive cases (writes during a rotation) are exact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sundial.activity import ClientInfo
from sundial.app import build_services, load_services, make_log_manager
from sundial.config import ensure_secret_key, load_config
from sundial.services import Services
from sundial.storage.records import put_record
from sundial.vault import service as service_module
from sundial.vault.crypto import SecretKey
from sundial.vault.errors import VaultError
from sundial.vault.service import RotationEvent
from sundial.vault.store import read_key_state, read_secret_records

CLIENT = ClientInfo(ip="127.0.0.1", ips=["127.0.0.1"], useragent="test")


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    config = load_config(tmp_path, {"local_satellite.enabled": False}, environ={})
    ensure_secret_key(config)
    logs = make_log_manager(config)
    built = build_services(config, logs)
    await load_services(built)
    await built.vault.open()
    yield built
    await built.vault.close()
    await built.storage.close()
    logs.close()


async def _make(services: Services, name: str, value: str, **assign: Any) -> str:
    meta = await services.vault.create({"title": name, "fields": [{"name": name, "value": value}], **assign},
                                       username="admin", actor="admin", client=CLIENT)
    return str(meta["id"])


async def test_write_read_delete_keep_caches_and_storage_in_step(services: Services) -> None:
    vault = services.vault
    sid = await _make(services, "DB_PASSWORD", "synthetic-1", events=["ev1"])
    assert await vault.secrets_for("events", "ev1") == {"DB_PASSWORD": "synthetic-1"}
    await vault.update(sid, {"fields": [{"name": "DB_PASSWORD", "value": "synthetic-2"}]}, actor="admin",
                       client=CLIENT)
    assert await vault.secrets_for("events", "ev1") == {"DB_PASSWORD": "synthetic-2"}
    await vault.update(sid, {"enabled": False}, actor="admin", client=CLIENT)
    assert await vault.secrets_for("events", "ev1") == {}
    stored = await read_secret_records(services.storage)
    assert "synthetic" not in json.dumps(stored)
    await vault.delete(sid, actor="admin", client=CLIENT)
    assert sid not in await read_secret_records(services.storage) and vault.get_metadata(sid) is None


async def test_job_precedence_and_one_use_line_per_secret(services: Services) -> None:
    await _make(services, "X", "from-event", events=["ev"])
    await _make(services, "X", "from-parent-event", events=["pev"])
    await _make(services, "X", "from-parent-category", categories=["pcat"])
    await _make(services, "X", "from-category", categories=["cat"])
    job = {"event": "ev", "category": "cat", "plugin": "plug", "workflow": {"job": "jparent"}}
    parent = {"event": "pev", "category": "pcat"}
    lookup = {"jparent": parent}.get
    assert await services.vault.job_secrets(job, lookup) == {"X": "from-category"}
    await _make(services, "X", "from-plugin", plugins=["plug"])
    assert await services.vault.job_secrets(job, lookup) == {"X": "from-plugin"}
    assert await services.vault.job_secrets({**job, "plugin": "other", "category": "c2"}, lookup) == \
        {"X": "from-parent-category"}
    assert await services.vault.job_secrets({**job, "plugin": "other", "category": "c2"}) == {"X": "from-event"}
    lines = services.logs.file_for("Secret").read_text().splitlines()
    assert any("][Secret][debug][1][Using secret " in line and " for plugins: plug][" in line for line in lines)
    assert not any("from-" in line for line in lines)


async def test_web_hook_macros(services: Services) -> None:
    await _make(services, "HOOK_TOKEN", "synthetic-hook", web_hooks=["wh1"])
    text = "Bearer {{ secrets.HOOK_TOKEN }} {{secrets.MISSING}} {{ other }}"
    assert await services.vault.expand_web_hook(text, "wh1", "n/a") == "Bearer synthetic-hook n/a {{ other }}"
    assert await services.vault.expand_web_hook(text, "unsaved") == "Bearer   {{ other }}"
    assert services.vault.scrub("x=synthetic-hook", ["synthetic-hook"]) == "x=(REDACTED)"


async def test_rotation_moves_everything_and_keeps_writes_made_meanwhile(services: Services,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    vault = services.vault
    ids = [await _make(services, f"K{i}", f"synthetic-{i}") for i in range(5)]
    real = service_module.reencrypt_all_async
    gate = asyncio.Event()
    calls = 0

    async def slow_first(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(service_module, "reencrypt_all_async", slow_first)
    new = SecretKey("78" * 32)
    task = asyncio.create_task(vault.rotate(new, model="direct"))
    await asyncio.sleep(0.05)
    late = await _make(services, "LATE", "synthetic-late")          # during the slow prepare
    await vault.update(ids[0], {"fields": [{"name": "K0", "value": "synthetic-changed"}]}, actor="a", client=CLIENT)
    gate.set()
    outcome = await task
    assert outcome.secrets == 6 and vault.current.key == new and outcome.epoch == 2
    stored = await read_secret_records(services.storage)
    for sid, record in stored.items():
        assert record["kep"] == 2
        fields = await vault.keyring.decrypt_fields_async(record, sid)
        assert fields[0]["value"] in {f"synthetic-{i}" for i in range(1, 5)} | {"synthetic-changed",
                                                                                  "synthetic-late"}
    assert late in stored
    canary, marker = await read_key_state(services.storage)
    assert canary["fingerprint"] == new.fingerprint and marker is None  # persisted, marker dropped
    assert services.config.overrides["secret_key"] == new.reveal()


async def test_hooks_see_both_keys_and_a_failing_hook_only_warns(services: Services) -> None:
    seen: list[RotationEvent] = []

    async def fleet(event: RotationEvent) -> dict[str, int]:
        seen.append(event)
        return {"servers": 2}

    async def broken(event: RotationEvent) -> None:
        raise RuntimeError("peer down")

    services.vault.rotation_hooks += [fleet, broken]
    old = services.vault.current.key
    outcome = await services.vault.rotate(SecretKey("9a" * 32), model="xyops")
    assert seen[0].old == old and seen[0].new.reveal() == "9a" * 32 and seen[0].epoch == 2
    assert outcome.hook_counts == {"servers": 2} and "failed" in outcome.warnings[0]


async def test_imported_xyops_records_open_and_rotate(services: Services, reference: Any) -> None:
    key_text = services.vault.current.key.reveal()
    async with services.storage.transaction() as tx:
        for i in range(3):
            sid = f"zimport{i}"
            await services.lists["secrets"].insert(tx, {"id": sid, "title": sid, "enabled": True, "plugins": ["p"],
                                                        "names": ["IMP"]})
            await put_record(services.storage, tx, f"secrets/{sid}",
                             reference.encrypt([{"name": "IMP", "value": f"imported-{i}"}], sid, key_text))
    await services.vault.reload()
    assert await services.vault.secrets_for("plugins", "p") == {"IMP": "imported-2"}
    await services.vault.rotate(SecretKey("bc" * 32), model="cli")
    stored = await read_secret_records(services.storage)
    assert reference.decrypt(stored["zimport1"], "zimport1", "bc" * 32) == [{"name": "IMP", "value": "imported-1"}]


async def test_direct_rotation_checks_the_old_key_and_refuses_during_maintenance(services: Services) -> None:
    rotations = services.rotations
    with pytest.raises(VaultError) as caught:
        await rotations.rotate_direct(SecretKey("01" * 32), SecretKey("02" * 32), username="a", actor="a",
                                      client=CLIENT)
    assert (caught.value.code, caught.value.description) == ("auth", "Old master key incorrect")
    handle = services.internal_jobs.start("Other maintenance", "maint", "admin")
    with pytest.raises(VaultError, match="Another maintenance job is already running."):
        await rotations.rotate_direct(services.vault.current.key, SecretKey("02" * 32), username="a",
                                      actor="a", client=CLIENT)
    await handle.finish()
    answer = await rotations.rotate_direct(services.vault.current.key, SecretKey("02" * 32), username="a",
                                           actor="a", client=CLIENT)
    assert answer["restart_required"] is False and answer["key_epoch"] == 2
    assert services.state.scheduler_enabled is False


async def test_concurrent_writes_share_commits_and_a_bad_one_fails_alone(services: Services) -> None:
    ids = await asyncio.gather(*(_make(services, f"C{i}", f"synthetic-c{i}") for i in range(20)))
    assert len(set(ids)) == 20 and all(services.vault.get_metadata(sid) for sid in ids)
    await services.lists["secrets"].load()  # the stored order matches creation order (distinct seqs)
    assert [item["id"] for item in services.lists["secrets"].all()][-20:] == list(ids)

    async def broken(tx: Any) -> None:
        raise RuntimeError("synthetic failure")

    results = await asyncio.gather(services.vault._writer.submit(broken),
                                   _make(services, "AFTER", "synthetic-after"), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], str)
    assert await services.vault.secrets_for("events", "none") == {}
    rows, _total = await services.activity.search("action:secret_create", limit=100)
    assert len(rows) == 21
