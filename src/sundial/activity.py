"""The activity log: who changed what, from where, written in the same transaction as the change.

Records follow the xyOps Activity shape and are mirrored to `Transaction.log`. Client
headers are stored without cookies or credentials, so the log can be shown to admins and
exported without leaking sessions or keys.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, insert, select

from sundial.ids import generate_id
from sundial.logs import Logger
from sundial.storage.engine import Storage, Tx
from sundial.storage.schema import activity
from sundial.storage.search import SearchColumn, SearchIndex, compile_query, normalize_words

ACTIVITY_INDEX = SearchIndex(
    columns={
        "action": SearchColumn(activity.c.action, "exact"),
        "keywords": SearchColumn(activity.c.keywords, "words"),
        "username": SearchColumn(activity.c.keywords, "words"),
        "date": SearchColumn(activity.c.epoch, "date"),
    },
    default="keywords",
)


@dataclass
class ClientInfo:
    ip: str = ""
    ips: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    useragent: str = ""


SYSTEM = ClientInfo(ip="", ips=[], headers={}, useragent="Sundial")


def describe_useragent(agent: str) -> str:
    """A short `Browser version / OS` label, as xyOps shows beside activity rows."""
    if not agent:
        return ""
    browser = "Unknown"
    for name, pattern in (("Edge", r"Edg/([\d.]+)"), ("Chrome", r"Chrome/([\d.]+)"),
                          ("Firefox", r"Firefox/([\d.]+)"), ("Safari", r"Version/([\d.]+).*Safari"),
                          ("curl", r"curl/([\d.]+)"), ("Python", r"python-httpx/([\d.]+)")):
        match = re.search(pattern, agent)
        if match:
            browser = f"{name} {'.'.join(match.group(1).split('.')[:2])}"
            break
    system = next((label for label, needle in (("Windows", "Windows"), ("macOS", "Mac OS"),
                                               ("Android", "Android"), ("iOS", "iPhone"),
                                               ("Linux", "Linux")) if needle in agent), "")
    return f"{browser} / {system}" if system else browser


class ActivityLog:
    """Writes and searches activity records."""

    def __init__(self, storage: Storage, log: Logger) -> None:
        self.storage = storage
        self.log = log

    async def record(self, tx: Tx, action: str, description: str, *, client: ClientInfo | None = None,
                     username: str | None = None, admin: str | None = None,
                     keywords: list[str] | None = None, **payload: Any) -> dict[str, Any]:
        """Insert one record inside the caller's transaction; log it once committed."""
        client = client or SYSTEM
        words = [str(k) for k in keywords or []]
        if username:
            words.append(re.sub(r"\W", "_", username))
        if admin:
            words.append(re.sub(r"\W", "_", admin))
        words.extend(client.ips)
        doc: dict[str, Any] = {
            "id": generate_id("a"), "action": action, "epoch": time.time(),
            "description": description, "ip": client.ip, "ips": client.ips,
            "headers": client.headers, "keywords": words, **payload,
        }
        if username:
            doc["username"] = username
        if admin:
            doc["admin"] = admin
        await tx.conn.execute(insert(activity).values(
            id=doc["id"], epoch=doc["epoch"], action=action, username=username,
            keywords=normalize_words(words + [action]), doc=doc))
        tx.after_commit(lambda: self.log.transaction(action, description, {
            "id": doc["id"], "username": username, "ip": client.ip}))
        return doc

    async def search(self, query: str, *, offset: int = 0, limit: int = 1, sort_dir: int = -1,
                     action_prefix: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """One page of matches and the total; `action_prefix` keeps actions `<prefix>_...` only
        (revision history of one object kind)."""
        where = compile_query(query, ACTIVITY_INDEX)
        if action_prefix:
            escaped = action_prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
            where = and_(where, activity.c.action.like(escaped + "\\_%", escape="\\"))
        order = activity.c.id.desc() if sort_dir < 0 else activity.c.id.asc()
        async with self.storage.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(activity).where(where))).scalar()
            rows = await conn.execute(select(activity.c.doc).where(where).order_by(order)
                                      .offset(offset).limit(limit))
            docs = [row.doc for row in rows]
        for doc in docs:
            doc["useragent"] = describe_useragent(doc.get("headers", {}).get("user-agent", ""))
        return docs, int(total or 0)
