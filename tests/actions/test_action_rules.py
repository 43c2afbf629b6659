"""The pure rules of actions: selection and dedupe, text templates, display helpers, e-mail parts, TLS bypass."""

from __future__ import annotations

import datetime
import http.server
import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hook_receivers import SmtpSink, wait_for

from sundial.actions.email import EmailError, Mailer, Message, custom_message, recipients
from sundial.actions.hookdata import SiteInfo, human_bytes, human_duration, job_hook_data, template_key
from sundial.actions.runner import select_actions
from sundial.netpolicy import AirgapRules, ProxySettings
from sundial.outbound import Outbound


def action(kind: str, condition: str = "complete", **fields: object) -> dict[str, object]:
    return {"enabled": True, "condition": condition, "type": kind, **fields}


def test_selection_dedupes_per_condition_and_skips_what_already_ran() -> None:
    job = {"actions": [
        action("email", users=["a"], email="x@y.z"), action("email", users=["a"], email="x@y.z"),  # dup
        action("email", users=["b"]), action("web_hook", web_hook="h"), action("web_hook", "error", web_hook="h"),
        {**action("web_hook", web_hook="g"), "code": 0},  # ran before (a retry carries it over)
        {**action("disable"), "enabled": False}, action("disable"), action("disable"),
        action("tag", tags=["a"]), action("tag", tags=["b"]),
    ]}
    chosen = [index for index, _ in select_actions(job, ["complete", "error"])]
    assert chosen == [0, 2, 3, 7, 9, 10, 4]
    assert select_actions({**job, "test": True, "test_conditions": ["error"]}, ["complete", "error"]) == \
        [(4, job["actions"][4])]
    assert select_actions({**job, "test": True, "test_actions": False}, ["complete"]) == []


def test_text_template_choice_and_display_helpers() -> None:
    assert template_key({"condition": "start"}, {}) == "job_start"
    assert template_key({"condition": "complete"}, {"final": True, "code": "x"}) == "job_error"
    assert template_key({"condition": "tag:flag"}, {"final": True, "code": 0}) == "job_success"
    assert template_key({"condition": "complete"}, {}) == "job_progress"
    assert template_key({"condition": "error", "template": "job_limited"}, {}) == "job_limited"
    assert human_duration(0.2) == "0 seconds" and human_duration(95) == "1 minute, 35 seconds"
    assert human_duration(90061) == "1 day, 1 hour"
    assert human_bytes(512) == "512 bytes" and human_bytes(1536) == "1.5 KB"
    site = SiteInfo(base_url="https://ops.example/", product="Sundial", host_id="conductor1",
                    log_token=lambda job_id: "tok", text_templates={"job_success": "done {{job.id}}"})
    job = {"id": "j1", "final": True, "code": 0, "server": "s1", "elapsed": 61, "log_file_size": 2048,
           "files": [{"path": "files/jobs/j1/x/report.txt"}], "cpu": {"total": 30, "count": 3, "max": 20}}
    data = job_hook_data(job, {"condition": "success"}, site=site, event={"title": "E"}, category=None, plugin=None,
                         server={"hostname": "web1.corp.example", "title": "Web"})
    assert data["text"] == "Sundial done j1" and data["nice_server"] == "Web (web1.corp.example)"
    assert data["nice_hostname"] == "web1" and data["env"].get("PATH") == os.environ.get("PATH")
    assert not [k for k in data["env"] if k.upper().startswith(("SUNDIAL_", "XYOPS_"))]
    assert data["links"] == {"job_details": "https://ops.example/#Job?id=j1",
                             "job_log": "https://ops.example/api/app/download_job_log?id=j1&t=tok",
                             "job_files": "- https://ops.example/files/jobs/j1/x/report.txt"}
    assert data["display"]["elapsed"] == "1 minute, 1 second" and data["display"]["cpu"] == "10.0% (Peak: 20.0%)"


def test_email_recipients_and_custom_markdown() -> None:
    assert recipients("a@x.io, bad, b@x.io;a@x.io", ["admin@localhost", ""]) == ["admin@localhost", "a@x.io", "b@x.io"]
    message = custom_message("<!-- Subject: Hi {{job.id}} -->\n<!-- From: bot@x.io -->\n# Title\n<script>x</script>",
                             {"job": {"id": "j9"}}, ["a@x.io"], "Sundial")
    assert message.subject == "Hi j9" and message.sender == "bot@x.io"
    assert "<h1>Title</h1>" in message.html and "<script>" not in message.html


async def test_mail_goes_out_as_text_and_html_and_failures_are_clear() -> None:
    sink = SmtpSink()
    try:
        mailer = Mailer({"host": "127.0.0.1", "port": sink.port}, "sundial@example.com")
        await mailer.send(Message(to=["a@example.com"], subject="S", text="plain body", html="<p>html body</p>"))
        rcpt, parsed = wait_for(lambda: sink.messages and sink.messages[0], 5, "the message")
        assert rcpt == ["a@example.com"] and parsed["From"] == "sundial@example.com"
        assert parsed.get_body(("plain",)).get_content().strip() == "plain body"
        assert "<p>html body</p>" in parsed.get_body(("html",)).get_content()
    finally:
        sink.close()
    closed = Mailer({"host": "127.0.0.1", "port": 9, "connectionTimeout": 2000}, "s@example.com")
    with pytest.raises(EmailError):
        await closed.send(Message(to=["a@example.com"], subject="S", text="t", html=""))
    with pytest.raises(EmailError, match="sendmail"):
        await Mailer({"sendmail": True}, "s@example.com").send(Message(["a@example.com"], "S", "t", ""))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield int(server.server_port)
    server.shutdown()
    server.server_close()


async def test_tls_verification_is_bypassed_per_request_only(tls_server: int) -> None:
    client = Outbound(AirgapRules(), ProxySettings())
    url = f"https://127.0.0.1:{tls_server}/"
    try:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await client.request("GET", url)
        assert (await client.request("GET", url, verify=False)).status == 204
        with pytest.raises(httpx.ConnectError):
            await client.request("GET", url)  # the bypass did not leak into the verifying pool
    finally:
        await client.aclose()
