"""Job files between the agent and the conductor (satellite-protocol.md §7.2, §7.6).

Before launch, ``details.input.files[]`` are downloaded into the job's working directory; after the
job, its output file specs are expanded and each file is posted to ``upload_job_file``. Uploads wait
for the conductor's health check to say it is the primary, so that a job finishing during a
failover lands on the conductor that will keep it. Every request carries a job-scoped credential
(``sha256(job_id + auth_token)`` with the server id), so a leaked upload credential is worth one job.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from sundial.protocol import job_token, sha256_hex

__all__ = ["ConductorLink", "OutputFile", "TransferError", "UploadUnsupported", "expand_specs", "upload_name"]

_UPLOAD_NAME = re.compile(r"[^\w\-+.,\s()\[\]{}'\"!&^%$#@*?~]")
_LOCAL_NAME = re.compile(r"[^\w\-+.,()\[\]{}@~ ]")
_GLOB_MAGIC = re.compile(r"[*?\[]")
Note = Callable[[str], None]


class TransferError(Exception):
    """A download or upload that failed for good (after retries where retrying made sense)."""


class UploadUnsupported(TransferError):
    """The conductor has no ``upload_job_file`` verb."""


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One file to upload: where it is, the name it gets, whether to delete it afterwards."""

    path: Path
    filename: str
    delete: bool = False


def upload_name(name: str) -> str:
    """The display name of an uploaded file: characters outside the allowed set become ``_``."""
    return _UPLOAD_NAME.sub("_", name) or "file"


def _local_name(name: str) -> str:
    """A bare file name that is safe to create inside the job directory."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    return _LOCAL_NAME.sub("_", base).strip(" .") or "file"


def _one_spec(spec: Any) -> tuple[str, str, bool] | None:
    if isinstance(spec, str):
        return spec, "", False
    if isinstance(spec, list) and spec and isinstance(spec[0], str):
        label = spec[1] if len(spec) > 1 and isinstance(spec[1], str) else ""
        return spec[0], label, len(spec) > 2 and bool(spec[2])
    if isinstance(spec, dict) and isinstance(spec.get("path"), str):
        given = spec.get("filename")
        return spec["path"], given if isinstance(given, str) else "", bool(spec.get("delete"))
    return None


def expand_specs(specs: Iterable[Any], cwd: Path) -> tuple[list[OutputFile], list[str]]:
    """Resolve output file specs (``"glob"``, ``[path, filename, delete]``, ``{path, filename,
    delete}``) against ``cwd``; returns the files and a remark for each spec that matched nothing."""
    found: dict[Path, OutputFile] = {}
    problems: list[str] = []
    for spec in specs:
        parsed = _one_spec(spec)
        if parsed is None:
            problems.append(f"Ignoring malformed output file spec: {str(spec)[:200]}")
            continue
        pattern, filename, delete = parsed
        path = cwd / pattern if pattern else cwd
        if filename or not _GLOB_MAGIC.search(pattern):
            matches = [path] if path.is_file() else []
        else:
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not matches:
            problems.append(f"Output file not found: {pattern}")
        for match in matches:
            found.setdefault(match, OutputFile(match, upload_name(filename or match.name), delete))
    return list(found.values()), problems


def _verify(verify: bool) -> bool | ssl.SSLContext:
    """`SSL_CERT_FILE` pins the conductor's certificate for file transfers as for the socket (docs/tls.md)."""
    cafile = os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=cafile) if verify and cafile else verify


@dataclass(frozen=True)
class ConductorLink:
    """How job files reach the conductor the agent is connected to, and with which credential."""

    base_url: str
    verify: bool = True
    server_id: str = ""
    auth_token: str = ""
    secret_key: str = ""
    retries: int = 8
    timeout: float = 300.0
    connect_timeout: float = 10.0
    idle_timeout: float = 30.0
    health_wait: float = 300.0

    def credentials(self, job_id: str) -> dict[str, str]:
        """Job-scoped auth: from the auth token (with the server id), else from a secret key."""
        if self.auth_token:
            return {"server": self.server_id, "auth": job_token(job_id, self.auth_token)}
        if self.secret_key:
            return {"auth": sha256_hex(job_id, self.secret_key)}
        return {}

    def client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.idle_timeout, connect=self.connect_timeout)
        return httpx.AsyncClient(base_url=self.base_url.rstrip("/"), verify=_verify(self.verify), timeout=timeout,
                                 trust_env=False)

    # -- health gate ----------------------------------------------------------------------------

    async def wait_primary(self, client: httpx.AsyncClient, note: Note) -> bool:
        """Poll ``/health`` once a second until it says ``master: true``, at most ``health_wait`` s."""
        deadline = time.monotonic() + self.health_wait
        warned = False
        while True:
            try:
                reply = await client.get("/health")
                if reply.headers.get("content-type", "").startswith("application/json") and \
                        reply.json().get("master") is True:
                    return True
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
            if time.monotonic() >= deadline:
                note("Conductor health check did not confirm a primary; trying the upload anyway.")
                return False
            if not warned:
                note("Waiting for the primary conductor before uploading files...")
                warned = True
            await asyncio.sleep(1.0)

    # -- downloads ------------------------------------------------------------------------------

    async def download(self, client: httpx.AsyncClient, file: dict[str, Any], cwd: Path) -> Path:
        """Fetch one input file into ``cwd``; raises :class:`TransferError` with the reason."""
        source = str(file.get("path") or "")
        name = _local_name(str(file.get("filename") or PurePosixPath(source).name))
        if not source:
            raise TransferError(f"input file {name} has no path")
        target = cwd / name
        await self._with_retries(lambda: self._fetch(client, "/" + source.lstrip("/"), target), f"download {name}")
        return target

    async def _fetch(self, client: httpx.AsyncClient, url: str, target: Path) -> None:
        async with client.stream("GET", url, timeout=self._timeout()) as reply:
            if reply.status_code != 200:
                kind = _Retry if reply.status_code >= 500 else TransferError
                raise kind(f"HTTP {reply.status_code} {reply.reason_phrase} for {url}")
            with target.open("wb") as out:
                async for chunk in reply.aiter_bytes():
                    out.write(chunk)

    # -- uploads --------------------------------------------------------------------------------

    async def upload(self, client: httpx.AsyncClient, job_id: str, out: OutputFile) -> dict[str, Any]:
        """Post one file to ``upload_job_file`` and return the File record for the job."""
        answer = await self._with_retries(lambda: self._post(client, job_id, out), f"upload {out.filename}")
        record = {"id": _file_id(), "date": int(time.time()), "filename": out.filename,
                  "path": answer.get("key"), "size": answer.get("size", out.path.stat().st_size),
                  "server": self.server_id, "job": job_id}
        if out.delete:
            out.path.unlink(missing_ok=True)
        return record

    async def _post(self, client: httpx.AsyncClient, job_id: str, out: OutputFile) -> dict[str, Any]:
        data = {"id": job_id, **self.credentials(job_id)}
        with out.path.open("rb") as handle:
            reply = await client.post("/api/app/upload_job_file/v1", data=data,
                                      files={"file1": (out.filename, handle)}, timeout=self._timeout())
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _Retry(f"HTTP {reply.status_code} {reply.reason_phrase}")
        if answer.get("code") != 0:
            description = str(answer.get("description") or answer.get("code"))
            if description.startswith("Unsupported API"):
                raise UploadUnsupported("the conductor does not support upload_job_file")
            raise TransferError(description)
        if not isinstance(answer.get("key"), str):
            raise TransferError("the conductor's reply has no storage key")
        return answer

    # -- plumbing -------------------------------------------------------------------------------

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.idle_timeout, connect=self.connect_timeout)

    async def _with_retries(self, attempt: Callable[[], Any], what: str) -> Any:
        """Retry what may pass (network errors, a reply that is not ours) with back-off from 50 ms
        doubling to 8 s; a definite answer from the conductor is final."""
        delay = 0.05
        for tries in range(self.retries + 1):
            try:
                return await asyncio.wait_for(attempt(), self.timeout)
            except UploadUnsupported:
                raise
            except (httpx.TransportError, TimeoutError, _Retry) as exc:
                if tries >= self.retries:
                    raise TransferError(f"Failed to {what}: {exc or type(exc).__name__}") from None
            except (TransferError, OSError) as exc:
                raise TransferError(f"Failed to {what}: {exc}") from None
            await asyncio.sleep(delay)
            delay = min(8.0, delay * 2)
        raise TransferError(f"Failed to {what}")


class _Retry(TransferError):
    """A reply that did not come from a conductor verb (a proxy's error page): worth retrying."""


def _file_id() -> str:
    """``f`` + base-36 milliseconds + random base-36, like other generated ids."""
    millis, digits = int(time.time() * 1000), "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while millis:
        millis, rest = divmod(millis, 36)
        out = digits[rest] + out
    return "f" + out + "".join(secrets.choice(digits) for _ in range(6))
