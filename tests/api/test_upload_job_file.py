"""`upload_job_file`: the satellite's output-file upload is authenticated and bound to a live job."""

from __future__ import annotations

import hashlib
import json

import httpx

from harness import ConductorProcess


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _secret_key(conductor: ConductorProcess) -> str:
    return str(json.loads((conductor.home / "conf" / "overrides.json").read_text())["secret_key"])


def _upload(conductor: ConductorProcess, data: dict[str, str], with_file: bool = True) -> dict:  # type: ignore[type-arg]
    files = {"file1": ("out.txt", b"hello")} if with_file else None
    return httpx.post(f"{conductor.url}/api/app/upload_job_file/v1", data=data, files=files).json()


def test_refuses_bad_credentials_missing_files_and_jobs_that_are_not_running(conductor: ConductorProcess):
    key = _secret_key(conductor)
    assert _upload(conductor, {"id": "jnone", "auth": "wrong"})["code"] == "session"
    server_token = _sha("satunit1" + key)
    job_scoped = {"id": "jnone", "auth": _sha("jnone" + server_token), "server": "satunit1"}
    assert _upload(conductor, job_scoped, with_file=False) == {"code": "api", "description": "Missing parameter: file1"}
    assert _upload(conductor, job_scoped) == {"code": "job", "description": "Job not found or not active: jnone"}
    assert _upload(conductor, {"id": "jnone", "auth": _sha("jnone" + key)})["code"] == "job"
    leftovers = list((conductor.home / "temp").glob("upload-*"))
    assert leftovers == [], "refused uploads leave no temp files behind"
