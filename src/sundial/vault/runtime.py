"""Pure pieces of secret delivery: which secrets a consumer gets, in what order, and what is logged.

The service layer decrypts (see `Keyring.decrypt_fields_async`); everything here works on
metadata and already-decrypted fields, so the precedence rules are testable without keys.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

AssignmentKind = Literal["events", "categories", "plugins", "web_hooks"]

LOG_COMPONENT = "Secret"
LOG_CATEGORY = "debug"
LOG_CODE = 1
REDACTED = "(REDACTED)"

# Plaintext metadata keys allowed into the use log; an allow-list so that a record that
# accidentally carries `fields` can never copy values into Secret.log.
METADATA_KEYS = ("id", "title", "enabled", "icon", "notes", "names", "events", "categories", "plugins",
                 "web_hooks", "username", "created", "modified", "revision")

# `{{ secrets.NAME }}`; other macros are left for the general template engine.
_SECRET_MACRO = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# Characters JavaScript's encodeURIComponent leaves alone, beside letters and digits.
_URI_COMPONENT_SAFE = "-_.!~*'()"


@dataclass(frozen=True)
class WorkflowParent:
    """The active parent workflow job of a sub-job."""

    event: str
    category: str


@dataclass(frozen=True)
class JobTarget:
    """What decides a job's secrets: its event, category, plugin and active workflow parent."""

    event: str
    category: str
    plugin: str
    parent: WorkflowParent | None = None


@dataclass(frozen=True)
class SecretUse:
    """One delivery of one secret to one consumer: one Secret.log line and one env merge."""

    secret: Mapping[str, Any]
    kind: AssignmentKind
    target_id: str

    @property
    def secret_id(self) -> str:
        return str(self.secret.get("id", ""))


@dataclass(frozen=True)
class LogEntry:
    """The columns of a log line the logger does not fill itself (time, host, pid)."""

    component: str
    category: str
    code: int
    message: str
    data: dict[str, Any]


def job_lookups(job: JobTarget) -> list[tuple[AssignmentKind, str]]:
    """Lookups in merge order (later wins): event, parent event, parent category, category, plugin.

    This is the order of xyOps's code, which the spec declares authoritative over its docs.
    """
    lookups: list[tuple[AssignmentKind, str]] = [("events", job.event)]
    parent = job.parent
    if parent is not None:
        if parent.event != job.event:
            lookups.append(("events", parent.event))
        if parent.category != job.category:
            lookups.append(("categories", parent.category))
    lookups.append(("categories", job.category))
    lookups.append(("plugins", job.plugin))
    return lookups


def _assigned(secret: Mapping[str, Any], kind: AssignmentKind, target_id: str) -> bool:
    targets = secret.get(kind)
    return bool(secret.get("enabled", True)) and isinstance(targets, list) and target_id in targets


def assigned_secrets(secrets: Iterable[Mapping[str, Any]], kind: AssignmentKind, target_id: str,
                     has_record: Callable[[str], bool]) -> list[Mapping[str, Any]]:
    """Enabled secrets assigned to a target, in list order, that have an encrypted record."""
    return [secret for secret in secrets
            if _assigned(secret, kind, target_id) and has_record(str(secret.get("id", "")))]


def plan_uses(secrets: Sequence[Mapping[str, Any]], lookups: Iterable[tuple[AssignmentKind, str]],
              has_record: Callable[[str], bool]) -> list[SecretUse]:
    """Every (secret, lookup) pair to deliver, in merge order; a secret may appear twice."""
    return [SecretUse(secret, kind, target_id)
            for kind, target_id in lookups
            for secret in assigned_secrets(secrets, kind, target_id, has_record)]


def _env_text(value: Any) -> str:
    """Env vars are strings; records imported from xyOps may hold other JSON types."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def merge_env(uses: Iterable[SecretUse],
              fields_by_id: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, str]:
    """Environment from decrypted fields, later uses winning.

    A secret missing from `fields_by_id` failed to decrypt and is skipped, as xyOps does after
    logging the failure: one bad record must not stop a job from getting the others.
    """
    env: dict[str, str] = {}
    for use in uses:
        for field in fields_by_id.get(use.secret_id, ()):
            name = field.get("name")
            if isinstance(name, str) and name:
                env[name] = _env_text(field.get("value"))
    return env


def metadata_only(secret: Mapping[str, Any]) -> dict[str, Any]:
    return {key: secret[key] for key in METADATA_KEYS if key in secret}


def use_log_entry(use: SecretUse) -> LogEntry:
    """The Secret.log routine-use line: `Using secret <id> (<title>) for <kind>: <target>`."""
    message = f"Using secret {use.secret_id} ({use.secret.get('title', '')}) for {use.kind}: {use.target_id}"
    data = {"secret": metadata_only(use.secret), "type": use.kind, "id": use.target_id}
    return LogEntry(LOG_COMPONENT, LOG_CATEGORY, LOG_CODE, message, data)


def expand_secret_macros(text: str, secrets: Mapping[str, str], undefined_value: str = "") -> str:
    """Replace `{{ secrets.NAME }}` in one pass.

    One pass on purpose: a secret value that itself contains `{{ … }}` is inserted verbatim,
    never evaluated. Other macros stay in place for the general template engine.
    """
    return _SECRET_MACRO.sub(lambda match: secrets.get(match.group(1), undefined_value), text)


def redact(text: str, values: Iterable[str], replacement: str = REDACTED) -> str:
    """Scrub secret values, raw and URL-encoded, from text shown to users (web hook details).

    One regex pass, longest alternative first: a value containing another is removed whole and
    the marker is never scrubbed again. Empty values are skipped (they would match everywhere).
    """
    needles = {value for value in values if value}
    needles |= {urllib.parse.quote(value, safe=_URI_COMPONENT_SAFE) for value in needles}
    if not needles:
        return text
    pattern = "|".join(re.escape(needle) for needle in sorted(needles, key=len, reverse=True))
    return re.sub(pattern, lambda _match: replacement, text)
