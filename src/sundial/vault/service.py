"""The vault service: secrets stored, delivered and rotated, with the key proven at every start.

Layout in storage (see `store`): metadata in the `secrets` config list, encrypted values at
`secrets/<id>`, the integrity canary and the pending-rotation marker beside them. Every
change commits the metadata, the encrypted record and its activity record in one
transaction. Decrypted values are cached in this process's memory only, so delivering a
secret to a job is a dictionary lookup; scrypt never runs on the event loop.

Key changes go through `rotate`, shared by both rotation models (DESIGN.md "one key
manager"): re-encrypt outside any transaction, then commit records + new canary + pending
marker in one transaction, switch the in-memory keyring, tell the rotation hooks, persist
the key, drop the marker. `startup.decide` resumes from any point of that sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sundial.activity import ActivityLog, ClientInfo
from sundial.config import Config, ensure_secret_key, set_path
from sundial.ids import generate_id
from sundial.logs import Logger
from sundial.storage.engine import Storage, Tx
from sundial.storage.lists import ConfigList
from sundial.vault import store
from sundial.vault.bulk import Progress, reencrypt_all_async
from sundial.vault.crypto import Fields, SecretKey
from sundial.vault.errors import DecryptError, VaultError
from sundial.vault.faults import fault_point
from sundial.vault.keyring import (
    WRITE_POOL_TARGET,
    CanaryCheck,
    Keyring,
    KeySlot,
    check_canary_async,
    create_canary_async,
    seal_pending_key,
)
from sundial.vault.runtime import (
    AssignmentKind,
    JobTarget,
    SecretUse,
    WorkflowParent,
    expand_secret_macros,
    job_lookups,
    merge_env,
    metadata_only,
    plan_uses,
    redact,
    use_log_entry,
)
from sundial.vault.startup import (
    KeyCheckFailed,
    KeySource,
    StartDecision,
    configured_key,
    decide,
    key_source,
    missing_key_refusal,
    shadowed_env_hint,
)
from sundial.vault.validation import field_names, validate_assignments, validate_fields, validate_object_id
from sundial.vault.warmup import RecordWarmer

METADATA_DEFAULTS: dict[str, Any] = {"enabled": True, "icon": "", "notes": "", "events": [], "categories": [],
                                     "plugins": [], "web_hooks": []}
TEXT_FIELDS = ("title", "icon", "notes")
DEFAULT_GRACE_SEC = 7 * 86400
PREWARM_SALTS = 8
RESERVE_DELAY_SEC = 10  # after start-up, before the salt reserve is derived


@dataclass(frozen=True)
class RotationEvent:
    """Handed to rotation hooks once the new key is committed and in force."""

    old: SecretKey
    new: SecretKey
    epoch: int
    model: str  # "xyops" (admin_rotate_secret_key), "direct" (/api/maintenance/rotate-key), "cli"


# A hook returns counters for the report, e.g. {"servers": 3}; exceptions become warnings.
RotationHook = Callable[[RotationEvent], Awaitable[Mapping[str, int] | None]]
ChangeListener = Callable[[str, dict[str, Any]], None]


@dataclass
class RotationOutcome:
    secrets: int
    epoch: int
    fingerprint: str
    persisted_to: str | None
    hook_counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    snapshot: dict[str, dict[str, Any]]
    rotated: dict[str, dict[str, Any]]
    canary: dict[str, Any]
    marker: dict[str, Any]


class _WriteGate:
    """Secret writes run side by side; a rotation's commit runs alone (readers never wait)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._writers = 0
        self._exclusive = False

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive)
            self._writers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._writers -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive)
            self._exclusive = True
            await self._cond.wait_for(lambda: self._writers == 0)
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class _GroupWriter:
    """Vault writes submitted at the same time share one transaction (group commit).

    Each caller still waits until its own change is committed (and its after-commit
    callbacks ran) before it answers, so nothing is acknowledged early; under load many
    changes share one commit instead of queueing for SQLite's single writer one by one.
    When a shared transaction fails, its changes are retried one per transaction, so a bad
    change fails alone.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._queue: list[tuple[Callable[[Tx], Awaitable[None]], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, work: Callable[[Tx], Awaitable[None]]) -> None:
        await self.enqueue(work)

    def enqueue(self, work: Callable[[Tx], Awaitable[None]]) -> asyncio.Future[None]:
        """Queue a change now (no suspension), so callers can fix the commit order; await the result."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((work, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return done

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                else:
                    await self._one_by_one(batch)

    async def _one_by_one(self, batch: list[tuple[Callable[[Tx], Awaitable[None]], asyncio.Future[None]]]) -> None:
        for item in batch:
            try:
                await self._commit([item])
            except Exception as exc:
                _settle(item[1], exc)

    async def _commit(self, batch: list[tuple[Callable[[Tx], Awaitable[None]], asyncio.Future[None]]]) -> None:
        async with self.storage.transaction() as tx:
            for work, _done in batch:
                await work(tx)
        for _work, done in batch:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return  # the caller went away (request cancelled); the change itself stands
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class VaultService:
    """One per conductor (held by `Services.vault`)."""

    def __init__(self, config: Config, storage: Storage, secrets: ConfigList, activity: ActivityLog, *,
                 use_log: Logger, log: Logger) -> None:
        self.config = config
        self.storage = storage
        self.secrets = secrets
        self.activity = activity
        self.use_log = use_log
        self.log = log
        self.source: KeySource = key_source(config)
        self.rotation_hooks: list[RotationHook] = []
        self.listeners: list[ChangeListener] = []
        self._keyring: Keyring | None = None
        self._records: dict[str, dict[str, Any]] = {}
        self._plain: dict[str, Fields] = {}
        self._versions: Counter[str] = Counter()
        self._pending_ids: set[str] = set()
        self._gate = _WriteGate()
        self._rotation_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writer = _GroupWriter(storage)
        self._warm: asyncio.Future[int] | None = None  # the derivation of write salts running now, if any
        self._first_salts: asyncio.Future[int] | None = None  # the start-up one
        self._turn: asyncio.Future[None] | None = None  # the latest write's turn (see _encrypt_in_order)
        self._warmer: RecordWarmer | None = None  # derives every record's key after start (see warmup)

    # -- start-up ------------------------------------------------------------------------------
    async def open(self, *, strict: bool = False) -> StartDecision:
        """Prove the configured key against the store, or refuse (KeyCheckFailed) to start."""
        self.source = key_source(self.config)
        try:
            canary, marker = await store.read_key_state(self.storage)
            records = await store.read_secret_records(self.storage)
            key = self._key_or_first_key(canary, records)
            try:
                decision = await asyncio.to_thread(decide, key, canary, marker, records, self.source, strict=strict)
            except KeyCheckFailed as exc:
                raise KeyCheckFailed(str(exc) + shadowed_env_hint(self.config, self.source)) from None
        except KeyCheckFailed as exc:
            self.log.error("key", str(exc))
            raise
        self._keyring = self._ring_for(decision)
        await self._apply_start(decision)
        self._records = records
        self._plain.clear()
        # Fresh write salts (~60 ms of scrypt each) are derived beside start-up rather than before
        # it: only the canary check must finish before a port opens; writes that come first wait
        # for them (`_salt_ready`), in arrival order, as they would have waited for start-up.
        self._warm = self._first_salts = asyncio.ensure_future(asyncio.to_thread(self._keyring.refill))
        self._tasks.add(self._warm)
        self._warm.add_done_callback(self._tasks.discard)
        self._spawn(self._prewarm())
        self._spawn(self._fill_reserve_when_settled())
        self.log.debug(2, f"Secret key verified (fingerprint {decision.current.fingerprint}, "
                          f"epoch {decision.current.epoch}, from {self.source.description})")
        return decision

    def _key_or_first_key(self, canary: Any, records: Mapping[str, Any]) -> SecretKey:
        """The configured key; on a store with nothing encrypted yet, a generated one (first start)."""
        try:
            return configured_key(self.config, self.source)
        except KeyCheckFailed:
            refusal = missing_key_refusal(canary, records)
            if refusal is not None:
                raise refusal from None
        ensure_secret_key(self.config)
        self.source = key_source(self.config)
        self.log.debug(1, f"Generated a new secret_key and stored it in {self.config.overrides_file} (mode 0600)")
        return configured_key(self.config, self.source)

    def _ring_for(self, decision: StartDecision) -> Keyring:
        if decision.previous is None:
            return Keyring(decision.current.key, epoch=decision.current.epoch)
        ring = Keyring(decision.previous.key, epoch=decision.previous.epoch)
        ring.begin_rotation(decision.current.key, epoch=decision.current.epoch)
        ring.activate_next(previous_valid_until=time.time() + self.grace_sec)
        return ring

    async def _apply_start(self, decision: StartDecision) -> None:
        """Store changes a start decision asks for: persist first, then drop the marker."""
        if decision.persist_key:
            self._persist(decision.current.key)
        if decision.create_canary or decision.delete_marker:
            canary = (await create_canary_async(decision.current.key, epoch=decision.current.epoch)
                      if decision.create_canary else None)
            async with self.storage.transaction() as tx:
                if canary is not None:
                    await store.write_canary(self.storage, tx, canary)
                if decision.delete_marker:
                    await store.delete_pending(tx)
        for note in decision.notes:
            self.log.debug(1, note)

    async def _prewarm(self) -> None:
        """Derive the keys of the most used salts first, so first reads are fast; then every
        other record's on a low-priority thread, so a rotation after a restart costs no more
        than one on a long-running conductor."""
        ring = self.keyring
        salts = Counter(rec.get("salt") for rec in self._records.values() if isinstance(rec.get("salt"), str))
        for salt, _count in salts.most_common(PREWARM_SALTS):
            sample = next(((sid, rec) for sid, rec in self._records.items() if rec.get("salt") == salt), None)
            if sample is not None:
                with contextlib.suppress(VaultError):
                    await ring.decrypt_fields_async(sample[1], sample[0])
        self._warm_all()

    def _warm_all(self) -> None:
        """(Re)start the background warmer over the records as they are now."""
        self._stop_warmer()
        if not self.rotating:
            self._warmer = RecordWarmer(self.keyring, self._records.items()).start()

    def _stop_warmer(self) -> None:
        if self._warmer is not None:
            self._warmer.stop()
            self._warmer = None

    async def reload(self) -> None:
        """Re-read encrypted records (after an import or SIGHUP) so delivery matches storage."""
        self._records = await store.read_secret_records(self.storage)
        self._plain.clear()
        self._versions.update(self._records.keys())
        if self._keyring is not None:
            self._warm_all()

    async def _salt_ready(self) -> None:
        """The first writes wait for the start-up salts (in arrival order) rather than each start a
        scrypt of its own beside them; later, a write with an empty pool derives its own salt."""
        if self._first_salts is not None and not self._first_salts.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._first_salts)

    @property
    def salt_reserve(self) -> int:
        """How many fresh write salts to keep derived (`secret_write_salts`); at least the start-up few."""
        return max(WRITE_POOL_TARGET, int(self.config.get("secret_write_salts", WRITE_POOL_TARGET) or 0))

    async def _fill_reserve_when_settled(self) -> None:
        """Why: each save needs a new salt and so a full scrypt (~30 ms of CPU); a reserve derived
        once start-up has settled lets a burst of saves (an import script, a UI session) go at AES
        speed, while a short-lived conductor never pays for it."""
        await asyncio.sleep(RESERVE_DELAY_SEC)
        self._top_up()

    def _top_up(self) -> None:
        """After a write used a fresh salt, derive replacements off the request path (one thread at a time)."""
        if self._warm is None or self._warm.done():
            self._warm = asyncio.ensure_future(asyncio.to_thread(self.keyring.refill, self.salt_reserve))
            self._tasks.add(self._warm)
            self._warm.add_done_callback(self._tasks.discard)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._stop_warmer()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- key facts -------------------------------------------------------------------------------
    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise VaultError("secret", "The vault is not open yet")
        return self._keyring

    @property
    def current(self) -> KeySlot:
        return self.keyring.current

    @property
    def grace_sec(self) -> float:
        return float(self.config.get("key_rotation.grace_sec", DEFAULT_GRACE_SEC))

    def token_keys(self) -> list[str]:
        """Key texts whose derived tokens (agents, peers, links) are accepted now."""
        return [key.reveal() for key in self.keyring.token_keys()]

    async def check_candidate(self, candidate: SecretKey) -> CanaryCheck:
        """Does `candidate` open the stored canary? (model B's old key, `sundial key verify`)."""
        canary, _marker = await store.read_key_state(self.storage)
        return await check_canary_async(canary, candidate, self.keyring.cache if self._keyring else None)

    # -- metadata reads ------------------------------------------------------------------------
    def all_metadata(self) -> list[dict[str, Any]]:
        return [metadata_only(item) for item in self.secrets.all()]

    def get_metadata(self, secret_id: str) -> dict[str, Any] | None:
        item = self.secrets.get(secret_id)
        return metadata_only(item) if item is not None else None

    def _existing(self, secret_id: str) -> dict[str, Any]:
        item = self.secrets.get(secret_id)
        if item is None:
            raise VaultError("secret", f"Secret not found: {secret_id}")
        return item

    # -- writes --------------------------------------------------------------------------------
    async def create(self, params: Mapping[str, Any], *, username: str, actor: str,
                     client: ClientInfo) -> dict[str, Any]:
        """Validate, encrypt, commit metadata + record + activity together; returns metadata."""
        secret_id = validate_object_id(params["id"]) if params.get("id") else generate_id("z")
        meta = {**copy.deepcopy(METADATA_DEFAULTS), **_text_changes(params), **validate_assignments(params)}
        if not str(meta.get("title") or "").strip():
            raise VaultError("api", "Missing parameter: title")
        fields = validate_fields(params.get("fields", []))
        now = int(time.time())
        meta.update(id=secret_id, names=field_names(fields), username=username, created=now, modified=now,
                    revision=1)
        self._claim(secret_id)
        try:
            async with self._gate.shared():
                await self._salt_ready()
                record, turn = await self._encrypt_in_order(fields, secret_id)
                await self._commit("create", meta, record, fields, actor, client, turn)
        finally:
            self._pending_ids.discard(secret_id)
        return metadata_only(meta)

    def _claim(self, secret_id: str) -> None:
        if secret_id in self.secrets or secret_id in self._pending_ids:
            raise VaultError("secret", f"That Secret ID already exists: {secret_id}")
        self._pending_ids.add(secret_id)

    async def update(self, secret_id: str, params: Mapping[str, Any], *, actor: str,
                     client: ClientInfo) -> dict[str, Any]:
        """Sparse metadata change; `fields`, when sent, replaces every value (new IV)."""
        current = self._existing(secret_id)
        meta = {**copy.deepcopy(current), **_text_changes(params), **validate_assignments(params)}
        fields = validate_fields(params["fields"]) if "fields" in params else None
        if fields is not None:
            meta["names"] = field_names(fields)
        meta.update(id=secret_id, modified=int(time.time()), revision=int(current.get("revision") or 0) + 1)
        async with self._gate.shared():
            await self._salt_ready()
            self._existing(secret_id)  # deleted while we waited?
            record, turn = await self._encrypt_in_order(fields, secret_id)
            await self._commit("update", meta, record, fields, actor, client, turn)
        return metadata_only(meta)

    async def delete(self, secret_id: str, *, actor: str, client: ClientInfo) -> dict[str, Any]:
        current = self._existing(secret_id)

        async def work(tx: Tx) -> None:
            await store.delete_secret_record(tx, secret_id)
            await self.secrets.delete(tx, secret_id)
            await self._audit(tx, "secret_delete", current, actor, client)
            tx.after_commit(lambda: self._after_change("delete", current, None, None))

        async with self._gate.shared():
            await self._writer.submit(work)
        return metadata_only(current)

    async def _encrypt_in_order(self, fields: Fields | None, secret_id: str) -> tuple[dict[str, Any] | None,
                                                                                     asyncio.Future[None]]:
        """Encrypt (in parallel with other writes), then wait for every earlier write to be queued.

        Why: a write whose fresh salt is already derived encrypts at once while one that needs
        scrypt waits for a thread; without the turn, the later request could commit first and the
        secrets list would not keep arrival order. Returns the record and this write's turn,
        which `_commit` releases once the change is queued.
        """
        previous, mine = self._turn, asyncio.get_running_loop().create_future()
        self._turn = mine
        try:
            record = await self.keyring.encrypt_fields_async(fields, secret_id) if fields is not None else None
            if record is not None:
                self._top_up()
            if previous is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(previous)
        except BaseException:
            _settle(mine, None)
            raise
        return record, mine

    async def _commit(self, what: str, meta: dict[str, Any], record: dict[str, Any] | None,
                      fields: Fields | None, actor: str, client: ClientInfo,
                      turn: asyncio.Future[None] | None = None) -> None:
        """Metadata, ciphertext and activity record of one change, committed together."""

        async def work(tx: Tx) -> None:
            if what == "create":
                await self.secrets.insert(tx, meta)
            else:
                await self.secrets.replace(tx, meta)
            if record is not None:
                await store.write_secret_record(self.storage, tx, meta["id"], record)
            await self._audit(tx, f"secret_{what}", meta, actor, client)
            tx.after_commit(lambda: self._after_change(what, meta, record, fields))

        done = self._writer.enqueue(work)
        if turn is not None:
            _settle(turn, None)
        await done

    async def _audit(self, tx: Any, action: str, meta: Mapping[str, Any], actor: str,
                     client: ClientInfo) -> None:
        await self.activity.record(tx, action, str(meta.get("title") or meta["id"]), client=client,
                                   username=actor, keywords=[str(meta["id"])], secret=metadata_only(meta))

    def _after_change(self, what: str, meta: dict[str, Any], record: dict[str, Any] | None,
                      fields: Fields | None) -> None:
        """Runs only after the commit: caches follow storage, never lead it."""
        secret_id = meta["id"]
        self._versions[secret_id] += 1
        if what == "delete":
            self._records.pop(secret_id, None)
            self._plain.pop(secret_id, None)
        elif record is not None and fields is not None:
            self._records[secret_id] = record
            self._plain[secret_id] = [dict(item) for item in fields]
        for listener in self.listeners:
            listener(what, metadata_only(meta))

    # -- reading values ------------------------------------------------------------------------
    async def decrypt_for_admin(self, secret_id: str, *, actor: str, client: ClientInfo) -> Fields:
        """`decrypt_secret`, audited as `secret_access` before the values are returned.

        Reads the write-through record cache, which every change and `reload` (SIGHUP, data
        import) keeps equal to storage, so delivery and `decrypt_secret` always agree.
        """
        meta = self._existing(secret_id)
        record = self._records.get(secret_id)
        if record is None:
            raise VaultError("secret", f"Secret has no stored values: {secret_id}")
        fields = await self.keyring.decrypt_fields_async(record, secret_id)
        await self._writer.submit(lambda tx: self._audit(tx, "secret_access", meta, actor, client))
        return fields

    async def _fields(self, secret_id: str) -> Fields | None:
        """Cached plaintext, else decrypt the cached record; None (logged) when it will not open."""
        cached = self._plain.get(secret_id)
        if cached is not None:
            return cached
        record, version = self._records.get(secret_id), self._versions[secret_id]
        if record is None:
            return None
        try:
            fields = await self.keyring.decrypt_fields_async(record, secret_id)
        except DecryptError as exc:
            self.use_log.error("secret", exc.description, {"id": secret_id})
            return None
        if self._versions[secret_id] == version:
            self._plain[secret_id] = fields
        return fields

    async def _deliver(self, uses: list[SecretUse]) -> dict[str, str]:
        fields_by_id: dict[str, Fields] = {}
        for use in uses:
            if use.secret_id not in fields_by_id:
                fields = await self._fields(use.secret_id)
                if fields is None:
                    continue
                fields_by_id[use.secret_id] = fields
            entry = use_log_entry(use)
            self.use_log.debug(entry.code, entry.message, entry.data)
        return merge_env(uses, fields_by_id)

    def _has_record(self, secret_id: str) -> bool:
        return secret_id in self._records

    async def secrets_for(self, kind: AssignmentKind, target_id: str) -> dict[str, str]:
        """Merged `NAME: value` of the enabled secrets assigned to one target (plugin, hook ...)."""
        return await self._deliver(plan_uses(self.secrets.all(), [(kind, target_id)], self._has_record))

    async def job_secrets(self, job: Mapping[str, Any],
                          active_job: Callable[[str], Mapping[str, Any] | None] = lambda _id: None
                          ) -> dict[str, str]:
        """The environment a job receives: event < parent event < parent category < category < plugin."""
        target = JobTarget(event=str(job.get("event") or ""), category=str(job.get("category") or ""),
                           plugin=str(job.get("plugin") or ""), parent=_workflow_parent(job, active_job))
        return await self._deliver(plan_uses(self.secrets.all(), job_lookups(target), self._has_record))

    async def web_hook_secrets(self, hook_id: str) -> dict[str, str]:
        """`secrets` of a saved web hook's template context (unsaved test hooks get none)."""
        return await self.secrets_for("web_hooks", hook_id)

    async def expand_web_hook(self, text: str, hook_id: str, undefined_value: str = "") -> str:
        """Replace `{{ secrets.NAME }}` for a saved hook; other macros are left for the template engine."""
        return expand_secret_macros(text, await self.web_hook_secrets(hook_id), undefined_value)

    @staticmethod
    def scrub(text: str, values: Iterable[str]) -> str:
        """Web hook result details: every secret value, raw or URL-encoded, becomes (REDACTED)."""
        return redact(text, values)

    # -- rotation (both models) ----------------------------------------------------------------
    @property
    def rotating(self) -> bool:
        return self._rotation_lock.locked()

    async def rotate(self, new: SecretKey, *, model: str, progress: Progress | None = None) -> RotationOutcome:
        """Move every secret to `new`: all or nothing, resumable from any crash point."""
        async with self._rotation_lock:
            self._stop_warmer()  # the rotation derives what is left on every core itself
            ring = self.keyring
            old = ring.current
            slot = ring.begin_rotation(new)
            try:
                prepared = await self._prepare(old, slot, progress)
                fault_point("rotate", "prepare")
                async with self._gate.exclusive():
                    records = await self._commit_rotation(old, slot, prepared)
                    fault_point("rotate", "commit")
                    ring.activate_next(previous_valid_until=time.time() + self.grace_sec)
                    self._records = records
                    self._set_live_key(new)
            except BaseException:
                if ring.next is not None:
                    ring.abort_rotation()
                raise
            return await self._after_rotation(RotationEvent(old.key, new, slot.epoch, model), len(records))

    async def _prepare(self, old: KeySlot, slot: KeySlot, progress: Progress | None) -> _Prepared:
        """Everything expensive, outside any transaction and lock: writes keep flowing."""
        snapshot = await store.read_secret_records(self.storage)
        rotated = await reencrypt_all_async(snapshot.items(), old.key, slot.key, new_epoch=slot.epoch,
                                            cache=self.keyring.cache, progress=progress)
        canary, marker = await asyncio.gather(create_canary_async(slot.key, epoch=slot.epoch),
                                              asyncio.to_thread(seal_pending_key, slot, old.key))
        return _Prepared(snapshot, rotated, canary, marker)

    async def _commit_rotation(self, old: KeySlot, slot: KeySlot, prepared: _Prepared) -> dict[str, dict[str, Any]]:
        """Under the exclusive gate: catch up on writes made during `_prepare`, then one transaction."""
        current = await store.read_secret_records(self.storage)
        changed = {sid: rec for sid, rec in current.items() if prepared.snapshot.get(sid) != rec}
        records = {sid: prepared.rotated[sid] for sid in current if sid not in changed}
        records.update(await reencrypt_all_async(changed.items(), old.key, slot.key, new_epoch=slot.epoch,
                                                 cache=self.keyring.cache))
        async with self.storage.transaction() as tx:
            await store.write_canary(self.storage, tx, prepared.canary)
            await store.write_secret_records(self.storage, tx, records,
                                             between_chunks=lambda: fault_point("rotate", "mid_commit"))
            await store.write_pending(self.storage, tx, prepared.marker)
        return records

    async def _after_rotation(self, event: RotationEvent, count: int) -> RotationOutcome:
        """Committed and in force: hooks, then persist, then drop the marker (each step resumable)."""
        outcome = RotationOutcome(secrets=count, epoch=event.epoch, fingerprint=event.new.fingerprint,
                                  persisted_to=None)
        await self._run_hooks(event, outcome)
        fault_point("rotate", "hooks")
        if self.source.mutable:
            try:
                self._persist(event.new)
                outcome.persisted_to = str(self.config.overrides_file)
            except OSError as exc:
                outcome.warnings.append(f"Could not write {self.config.overrides_file} ({exc.strerror}); "
                                        "the next start finishes the rotation from the pending marker.")
        fault_point("rotate", "persist")
        if outcome.persisted_to is not None:
            async with self.storage.transaction() as tx:
                await store.delete_pending(tx)
        fault_point("rotate", "done")
        self.log.debug(1, f"Secret key rotated to fingerprint {outcome.fingerprint} (epoch {event.epoch}, "
                          f"{count} secrets, via {event.model})")
        return outcome

    async def _run_hooks(self, event: RotationEvent, outcome: RotationOutcome) -> None:
        for hook in list(self.rotation_hooks):
            try:
                counts = await hook(event)
            except Exception as exc:  # a hook must not undo a committed rotation
                name = getattr(hook, "__qualname__", "hook")
                outcome.warnings.append(f"Rotation hook {name} failed: {type(exc).__name__}")
                self.log.error("rotate", f"Rotation hook {name} failed: {exc!r}")
                continue
            for key, value in (counts or {}).items():
                outcome.hook_counts[key] = outcome.hook_counts.get(key, 0) + int(value)

    def _set_live_key(self, key: SecretKey) -> None:
        """Everything that derives from `secret_key` (tokens, links) uses the new key at once."""
        set_path(self.config.data, ["secret_key"], key.reveal())

    def _persist(self, key: SecretKey) -> None:
        """Atomic write of overrides.json (temp file, fsync, rename, mode 0600)."""
        self.config.set_overrides({"secret_key": key.reveal()})


def _text_changes(params: Mapping[str, Any]) -> dict[str, Any]:
    """The plaintext metadata a caller may set; anything else (values above all) is never stored."""
    changes: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in params and params[name] is not None:
            if not isinstance(params[name], str):
                raise VaultError("api", f"Parameter is not type string: {name}")
            changes[name] = params[name]
    if "enabled" in params and params["enabled"] is not None:
        changes["enabled"] = bool(params["enabled"])
    return changes


def _workflow_parent(job: Mapping[str, Any],
                     active_job: Callable[[str], Mapping[str, Any] | None]) -> WorkflowParent | None:
    """The parent workflow job, only while it is active (as xyOps does)."""
    workflow = job.get("workflow")
    parent_id = workflow.get("job") if isinstance(workflow, Mapping) else None
    parent = active_job(str(parent_id)) if parent_id else None
    if parent is None:
        return None
    return WorkflowParent(event=str(parent.get("event") or ""), category=str(parent.get("category") or ""))
