"""Files people send to the conductor for jobs: stored under `data/files/`, described by File objects.

Three doors share this: `upload_job_input_files` (a user prepares a run), multipart `run_event`
and magic links (files posted with the launch). Each upload is stored at
`files/<owner>/<base64url(32 random bytes)>/<url-safe name>`, so the key is unguessable and is
itself the download path (`/files/...`), as in xyOps. Stored job files are deleted through
:func:`delete_stored_file`, which never reaches outside `data/files/`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import Any

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.params import Params
from sundial.api.registry import VerbRouter
from sundial.config import Config
from sundial.ids import generate_id

router = VerbRouter()
_DISPLAY_UNSAFE = re.compile(r"""[^\w\-+.,\s()\[\]{}'"!&^%$#@*?~]""")
_URL_UNSAFE = re.compile(r"[^\w\-.]")


def display_name(name: str) -> str:
    """The name shown to users: the base name, characters outside the xyOps set made `_`."""
    base = PurePosixPath(name.replace("\\", "/")).name
    return _DISPLAY_UNSAFE.sub("_", base) or "file"


def url_name(name: str) -> str:
    """Storage-key form of a file name: `[\\w\\-.]` only, lowercase, `.bin` when it has no extension."""
    base = _URL_UNSAFE.sub("_", PurePosixPath(name.replace("\\", "/")).name).lower().strip(".") or "file"
    return base if "." in base else base + ".bin"


def random_folder() -> str:
    """base64url of 32 random bytes (43 characters), the unguessable part of a file key."""
    return secrets.token_urlsafe(32)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)


async def store_uploads(call: Call, prefix: str, stamp: dict[str, Any]) -> list[dict[str, Any]]:
    """Move every file of the request under `<prefix>/<random>/` and return their File objects.

    `stamp` adds the owner marks (`username`, or `magic: true`). The dispatcher deletes the
    temporary files of a request afterwards, so a refused request leaves nothing behind.
    """
    folder = f"{prefix}/{random_folder()}"
    root = call.services.config.home / "data"
    stored: list[dict[str, Any]] = []
    for upload in call.files.values():
        key = f"{folder}/{url_name(upload['name'])}"
        await asyncio.to_thread(_move, Path(upload["path"]), root / key)
        stored.append({"id": generate_id("f"), "date": int(time.time()), "filename": display_name(upload["name"]),
                       "path": key, "size": int(upload["size"]), **stamp})
    return stored


def check_file_limit(event: dict[str, Any], files: list[dict[str, Any]]) -> None:
    """The event's first enabled `file` limit: `amount` files at most (0: none), `size` bytes in all."""
    limit = next((lim for lim in event.get("limits") or [] if isinstance(lim, dict)
                  and lim.get("type") == "file" and lim.get("enabled")), None)
    if limit is None or not files:
        return
    raw = limit.get("amount")
    amount: float = raw if isinstance(raw, int | float) else 0
    if len(files) > amount:
        if not amount:
            raise ApiError("event", "Event does not allow file uploads.")
        raise ApiError("event", f"Uploaded file count exceeds limit ({_number(amount)}).")
    size = limit.get("size")
    if isinstance(size, int | float) and size > 0 and sum(int(f["size"]) for f in files) > size:
        raise ApiError("event", f"Uploaded file total size exceeds limit ({bytes_text(size)})")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def bytes_text(size: float) -> str:
    """Human size as xyOps prints it (`512 bytes`, `1 KB`, `2.5 MB`)."""
    units = ("bytes", "KB", "MB", "GB", "TB")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{int(value)} bytes"
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text} {units[unit]}"


def delete_stored_file(config: Config, key: str) -> bool:
    """Delete `data/<key>` when the key names a file under `data/files/`; False when there is none."""
    root = (config.home / "data" / "files").resolve()
    relative = key.lstrip("/")
    relative = relative[len("files/"):] if relative.startswith("files/") else relative
    target = (root / relative).resolve()
    if root not in target.parents or not target.is_file():
        return False
    target.unlink()
    for parent in target.parents:  # drop the emptied random folder, never the root
        if parent == root or any(parent.iterdir()):
            break
        parent.rmdir()
    return True


@router.verb("upload_job_input_files", Params, privilege="run_jobs")
async def upload_job_input_files(call: Call, p: Params) -> dict[str, Any]:
    """Store files before a run (`run_event` then passes them in `input.files`)."""
    if not call.files:
        raise ApiError("file", "No file upload data found in request.")
    owner = call.user.username or call.user.actor
    files = await store_uploads(call, f"files/{owner}", {"username": owner})
    return {"code": 0, "files": files}
