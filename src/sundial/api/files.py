"""Stored files (job outputs, uploads): `/files/<key>` and the `file` verb.

The unguessable key is the capability, as in xyOps: no session is needed to fetch a file
whose path you were given. HTML is always sent as a download so a stored file can never
run script in the conductor's origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from sundial.api.call import Call
from sundial.api.params import Flag, Params
from sundial.api.registry import PUBLIC, VerbRouter
from sundial.config import Config

router = VerbRouter()
_FORCE_DOWNLOAD = (".html", ".htm", ".xhtml", ".svg", ".xml", ".js", ".mjs")


def resolve_file(config: Config, key: str) -> Path | None:
    """The file under `<home>/data/files/` that a key names, or None (never outside that folder)."""
    root = (config.home / "data" / "files").resolve()
    relative = key.lstrip("/")
    relative = relative[len("files/"):] if relative.startswith("files/") else relative
    candidate = (root / relative).resolve()
    if root not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def file_response(config: Config, key: str, download: bool) -> Response:
    path = resolve_file(config, key)
    if path is None:
        return JSONResponse({"code": "notfound", "description": "File not found."}, status_code=404)
    force = download or path.suffix.lower() in _FORCE_DOWNLOAD
    return FileResponse(path, filename=path.name if force else None,
                        content_disposition_type="attachment" if force else "inline",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"})


class FileParams(Params):
    path: str = Field(max_length=2048)
    download: Flag | None = None


@router.verb("file", FileParams, auth=PUBLIC)
async def file(call: Call, p: FileParams) -> Response:
    """Download a stored file by its path (the path is the capability)."""
    return file_response(call.services.config, p.path, bool(p.download))


def files_endpoint(config: Config) -> Any:
    async def endpoint(request: Request) -> Response:
        return file_response(config, "files/" + request.path_params["key"],
                             request.query_params.get("download") not in (None, "", "0"))

    return endpoint
