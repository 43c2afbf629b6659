"""Local test servers for web hooks: an HTTP receiver, a forward proxy and an SMTP sink.

All listen on 127.0.0.1 in threads of the test process; conductors reach them over real
sockets, so nothing of Sundial is mocked.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import http.server
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from harness import free_port, wait_for

__all__ = ["wait_for"]  # re-exported: the action tests import it from here



@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: str


class Receiver:
    """Records every request; answers with the next scripted status (then 200), after `delay` s."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0,
                 redirect: str | None = None) -> None:
        self.hits: list[Hit] = []
        self.statuses = list(statuses or [])
        self.delay = delay
        self.redirect = redirect
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                owner.hits.append(Hit(self.command, self.path, dict(self.headers), body))
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.redirect and self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", owner.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = owner.statuses.pop(0) if owner.statuses else 200
                payload = b'{"received":true}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815 (stdlib names)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ForwardProxy:
    """A plain-HTTP forward proxy: records the absolute URLs it was asked for, then relays them."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _relay(self) -> None:
                owner.requests.append(self.path)
                target = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                conn = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
                conn.request(self.command, target.path or "/", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = _relay  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SmtpSink:
    """aiosmtpd on a free port; `messages` holds each delivered message, parsed."""

    port: int = field(default_factory=free_port)
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    def __post_init__(self) -> None:
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                sink.messages.append((list(envelope.rcpt_tos), parsed))
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
