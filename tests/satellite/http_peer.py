"""A small real HTTP server in a thread: targets for the HTTP plugin, and the conductor's file, health
and web-hook endpoints as the satellite sees them (request in, recorded; canned reply out)."""

from __future__ import annotations

import email.parser
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Recorder:
    """What the server saw and how the conductor endpoints should answer."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.hooks: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.upload_supported = True
        self.primary = True
        self.health_checks = 0


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields and files of a multipart body, read with the standard e-mail parser."""
    msg = email.parser.BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, Any] = {}
    parts: list[Any] = msg.get_payload()  # type: ignore[assignment]
    for part in parts:
        name = str(part.get_param("name", header="content-disposition"))
        filename = part.get_filename()
        payload: bytes = part.get_payload(decode=True)
        fields[name] = {"filename": filename, "data": payload} if filename else payload.decode()
    return fields


class Handler(BaseHTTPRequestHandler):
    server: PeerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, doc: Any, status: int = 200) -> None:
        self._send(status, json.dumps(doc).encode())

    def do_HEAD(self) -> None:  # noqa: N802 (stdlib naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self._route(b"")

    def do_POST(self) -> None:  # noqa: N802
        self._route(self._body())

    do_PUT = do_DELETE = do_POST  # noqa: N815

    def _route(self, body: bytes) -> None:
        url = urlsplit(self.path)
        rec = self.server.recorder
        rec.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                             "body": body})
        handler = ROUTES.get(url.path)
        if handler is not None:
            return handler(self, body, parse_qs(url.query))
        if url.path.startswith("/files/") and url.path[1:] in rec.files:
            return self._send(200, rec.files[url.path[1:]], "application/octet-stream")
        if url.path.startswith("/status/"):
            return self._send(int(url.path.split("/")[2]), b"status page", "text/plain")
        self._send(404, b"not found", "text/plain")

    # -- HTTP plugin targets ----------------------------------------------------------------------

    def echo(self, body: bytes, query: dict[str, list[str]]) -> None:
        self._json({"method": self.command, "headers": dict(self.headers), "body": body.decode("utf-8", "replace")})

    def text(self, body: bytes, query: dict[str, list[str]]) -> None:
        self._send(200, b"all systems nominal", "text/plain")

    def redirect(self, body: bytes, query: dict[str, list[str]]) -> None:
        self._send(302, b"", "text/plain", {"Location": "/echo"})

    def loop(self, body: bytes, query: dict[str, list[str]]) -> None:
        self._send(302, b"", "text/plain", {"Location": "/loop"})

    def download(self, body: bytes, query: dict[str, list[str]]) -> None:
        self._send(200, b"a,b\n1,2\n", "text/csv", {"Content-Disposition": 'attachment; filename="report.csv"'})

    def trickle(self, body: bytes, query: dict[str, list[str]]) -> None:
        """Headers at once, then a byte every 0.2 s for 5 s: idle-safe, total-timeout-unsafe."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "25")
        self.end_headers()
        for _ in range(25):
            time.sleep(0.2)
            self.wfile.write(b"x")
            self.wfile.flush()

    def stall(self, body: bytes, query: dict[str, list[str]]) -> None:
        time.sleep(3)
        self._send(200, b"late", "text/plain")

    # -- conductor endpoints ----------------------------------------------------------------------

    def health(self, body: bytes, query: dict[str, list[str]]) -> None:
        rec = self.server.recorder
        rec.health_checks += 1
        self._json({"code": 0 if rec.primary else "master", "master": rec.primary}, 200 if rec.primary else 503)

    def upload(self, body: bytes, query: dict[str, list[str]]) -> None:
        rec = self.server.recorder
        if not rec.upload_supported:
            return self._json({"code": 1, "description": "Unsupported API: app/api_upload_job_file"})
        fields = _multipart(self.headers["content-type"], body)
        rec.uploads.append(fields)
        key = f"files/jobs/{fields['id']}/k{len(rec.uploads)}/{fields['file1']['filename']}"
        self._json({"code": 0, "key": key, "size": len(fields["file1"]["data"])})

    def fire_hook(self, body: bytes, query: dict[str, list[str]]) -> None:
        doc = json.loads(body)
        self.server.recorder.hooks.append(doc)
        if doc.get("web_hook") == "no_such_verb":
            return self._json({"code": 1, "description": "Unsupported API: app/api_fire_job_web_hook"})
        if doc.get("web_hook") == "failing":
            return self._json({"code": "webhook", "description": "HTTP 500 Internal Server Error"})
        self._json({"code": 0, "description": "Web hook fired.", "details": "Sent to example."})


ROUTES = {"/echo": Handler.echo, "/text": Handler.text, "/redirect": Handler.redirect, "/loop": Handler.loop,
          "/download": Handler.download, "/trickle": Handler.trickle, "/stall": Handler.stall,
          "/health": Handler.health, "/api/app/upload_job_file/v1": Handler.upload,
          "/api/app/fire_job_web_hook/v1": Handler.fire_hook}


class PeerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.recorder = Recorder()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> PeerServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
