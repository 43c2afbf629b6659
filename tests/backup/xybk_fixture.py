"""A backup as xyOps 1.0 would write it, built by hand from the spec (admin-and-data.md §2-3).

Nothing here uses Sundial's code: the secret is encrypted with the xyOps recipe
(secrets-and-webhooks.md §2: scrypt N=16384 r=8 p=1, AES-256-GCM, AAD = secret id) straight
from `hashlib` and `cryptography`, and the password hash is bcrypt over password + salt.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from typing import Any

import bcrypt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_ID = "zdbcreds"
SECRET_FIELDS = [{"name": "DB_USER", "value": "reporting"}, {"name": "DB_PASS", "value": "s3cr3t \u00e9\u00e8"}]
USER, PASSWORD = "opsimport", "Correct-Horse-9"
JOB_ID = "jmk2x9y8z7w6v5u4"
JOB_LOG = "hello from an xyOps job\n"
JOB_FILE_KEY = f"files/jobs/{JOB_ID}/q1w2e3r4t5/report.txt"
JOB_FILE = b"region,total\nnorth,42\n"
NOW = 1767225600


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def xyops_encrypt(secret_key: str, secret_id: str, fields: list[dict[str, str]]) -> dict[str, Any]:
    salt, iv = os.urandom(16), os.urandom(12)
    key = hashlib.scrypt(secret_key.encode(), salt=salt, n=16384, r=8, p=1, dklen=32, maxmem=64 << 20)
    plaintext = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    sealed = AESGCM(key).encrypt(iv, plaintext, secret_id.encode())
    return {"v": 1, "alg": "aes-256-gcm", "salt": b64(salt), "iv": b64(iv), "tag": b64(sealed[-16:]),
            "ct": b64(sealed[:-16])}


def _list(key: str, pages: list[list[dict[str, Any]]], first: int = 0) -> list[dict[str, Any]]:
    count = sum(len(p) for p in pages)
    out: list[dict[str, Any]] = [{"cmd": "listDelete", "args": [key, False]},
                                 {"key": key, "value": {"type": "list", "length": count, "page_size": 2,
                                                        "first_page": first, "last_page": first + len(pages) - 1}}]
    out += [{"key": f"{key}/{first + n}", "value": {"type": "list_page", "items": items}}
            for n, items in enumerate(pages)]
    return out


def _stamp(extra: dict[str, Any]) -> dict[str, Any]:
    return {"username": "admin", "created": NOW, "modified": NOW, "revision": 1, **extra}


def entries(secret_key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(section comment, entries) in the order xyOps writes them."""
    salt = "9f" * 32
    hashed = bcrypt.hashpw((PASSWORD + salt).encode()[:72], bcrypt.gensalt(4)).decode()
    categories = [_stamp({"id": "reports", "title": "Reports", "enabled": True, "color": "blue"}),
                  _stamp({"id": "etl", "title": "ETL", "enabled": True, "color": "green"}),
                  _stamp({"id": "general", "title": "General", "enabled": True, "color": ""})]
    return [
        ("List: global/tags", _list("global/tags", [[_stamp({"id": "prod", "title": "Production", "icon": "server"}),
                                                      _stamp({"id": "nightly", "title": "Nightly"})]])),
        # Three categories over two pages numbered -1 and 0 (prepending made page -1).
        ("List: global/categories", _list("global/categories", [categories[:1], categories[1:]], first=-1)),
        ("List: global/secrets", _list("global/secrets", [[_stamp({
            "id": SECRET_ID, "title": "Reporting DB", "enabled": True, "icon": "", "notes": "",
            "names": [f["name"] for f in SECRET_FIELDS], "events": [], "categories": ["reports"],
            "plugins": [], "web_hooks": []})]])),
        ("List: global/users", _list("global/users", [[{"username": USER}, {"username": "admin"}]])),
        ("Database Index: jobs (*)", [{"index": "jobs", "id": JOB_ID, "record": {
            "id": JOB_ID, "event": "emonthly", "category": "reports", "plugin": "shellplug", "server": "sxyops1",
            "source": "scheduler", "code": 0, "description": "", "started": NOW - 30, "completed": NOW,
            "elapsed": 30, "tags": ["prod"], "files": [{"id": "f1", "path": JOB_FILE_KEY, "size": len(JOB_FILE),
                                                        "filename": "report.txt"}]}}]),
        ("Database Index: activity (*)", [{"index": "activity", "id": "amk2x9y8zactivity", "record": {
            "id": "amk2x9y8zactivity", "action": "tag_create", "epoch": NOW, "description": "Production",
            "username": "admin", "keywords": ["prod", "admin"]}}]),
        ("Database Index: alerts (*)", [{"index": "alerts", "id": "imk2alert", "record": {"id": "imk2alert"}}]),
        ("User Data:", [{"key": f"users/{USER}", "value": {
            "username": USER, "password": hashed, "salt": salt, "full_name": "Imported Ops",
            "email": "ops@example.com", "active": 1, "created": NOW, "modified": NOW,
            "privileges": {"admin": True}, "roles": []}}]),
        ("Job Files (*)", [{"key": f"logs/jobs/{JOB_ID}/log.txt.gz", "value": b64(gzip.compress(JOB_LOG.encode()))},
                           {"key": JOB_FILE_KEY, "value": b64(JOB_FILE)}]),
        ("Encrypted Secret Data", [{"key": f"secrets/{SECRET_ID}",
                                    "value": xyops_encrypt(secret_key, SECRET_ID, SECRET_FIELDS)}]),
    ]


def xybk_text(secret_key: str) -> str:
    lines = ["# xyOps Data Export v1.0", "# Hostname: xyops1.example.com",
             "# Date/Time: Thu Jan 01 2026 00:00:00 GMT+0000", "# Format: NDJSON", ""]
    for section, items in entries(secret_key):
        lines.append(f"# {section}")
        lines += [json.dumps(item, separators=(",", ":")) for item in items]
        lines.append("")
    lines.append("# End of file")
    return "\n".join(lines) + "\n"


def xybk_gz(secret_key: str) -> bytes:
    return gzip.compress(xybk_text(secret_key).encode())
