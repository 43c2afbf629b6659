"""HTTPS: the certificate pair, the proxy-aware front, and the start-up refusal of a bad pair."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from sundial.config import load_config
from sundial.logs import LogManager
from sundial.server import https_companion
from sundial.tls import HttpsFront, TlsError, check_pair, prepare_tls, self_signed_pair, write_self_signed


def _config(home: Path, **cli: Any) -> Any:
    return load_config(home, {"secret_key": "k", **cli}, environ={})


def test_self_signed_pair_is_made_once_then_reused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = prepare_tls(config, hostname="conductor1.example.com")
    assert first is not None and first.generated
    assert (tmp_path / "conf" / "tls.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "conf" / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"conductor1.example.com", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    again = prepare_tls(config)
    assert again is not None and not again.generated and again.cert.read_bytes() == first.cert.read_bytes()
    assert prepare_tls(_config(tmp_path, **{"WebServer.https": False})) is None


def test_a_certificate_that_does_not_match_its_key_is_refused(tmp_path: Path) -> None:
    write_self_signed(tmp_path / "a.crt", tmp_path / "a.key", "a")
    write_self_signed(tmp_path / "b.crt", tmp_path / "b.key", "b")
    check_pair(tmp_path / "a.crt", tmp_path / "a.key")
    with pytest.raises(TlsError, match=r"a\.crt does not match its private key .*b\.key"):
        check_pair(tmp_path / "a.crt", tmp_path / "b.key")
    (tmp_path / "junk.crt").write_text("not a certificate")
    with pytest.raises(TlsError, match="is not a PEM certificate"):
        check_pair(tmp_path / "junk.crt", tmp_path / "a.key")


def test_expiry_is_read_without_cryptography_as_cryptography_reads_it(tmp_path: Path) -> None:
    """check_pair reads notAfter from the DER itself (UTCTime before 2050, GeneralizedTime after)."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    for years in (1, 40):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * years))
                .sign(key, hashes.SHA256()))
        (tmp_path / "c.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "c.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        assert check_pair(tmp_path / "c.crt", tmp_path / "c.key") == cert.not_valid_after_utc


def test_an_encrypted_key_is_refused_without_a_passphrase_prompt(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    write_self_signed(tmp_path / "a.crt", tmp_path / "a.key", "a")
    key = serialization.load_pem_private_key((tmp_path / "a.key").read_bytes(), None)
    (tmp_path / "enc.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(TlsError, match="is not an unencrypted PEM private key"):
        check_pair(tmp_path / "a.crt", tmp_path / "enc.key")


def test_configured_files_that_do_not_exist_are_an_error_not_a_silent_self_signed_pair(tmp_path: Path) -> None:
    config = _config(tmp_path, **{"WebServer.https_cert_file": "/nonexistent/site.crt",
                                  "WebServer.https_key_file": "/nonexistent/site.key"})
    with pytest.raises(TlsError, match=r"certificate file not found: /nonexistent/site.crt .*command line"):
        prepare_tls(config)


def test_start_refuses_a_mismatched_pair_with_one_clear_line(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write_self_signed(conf / "tls.crt", tmp_path / "unused.key", "x")
    _cert, other_key = self_signed_pair("y")
    (conf / "tls.key").write_bytes(other_key)
    run = subprocess.run([sys.executable, "-m", "sundial", "start", "--foreground", "--home", str(tmp_path),
                          "--set", "secret_key=k", "--set", "local_satellite.enabled=false"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "Cannot start: The HTTPS certificate" in run.stderr and "does not match its private key" in run.stderr


def test_a_taken_https_port_leaves_http_serving_and_logs_why(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    config = _config(tmp_path, **{"WebServer.https_port": port, "WebServer.bind_address": "127.0.0.1"})
    logs = LogManager(tmp_path / "logs", columns=["component", "code", "msg"], filename="[component].log",
                      debug_level=5, hostname="h")
    try:
        assert https_companion(object(), config, logs.logger("Sundial"), prepare_tls(config)) is None
    finally:
        holder.close()
        logs.close()
    assert f"HTTPS is off: cannot listen on port {port}" in (tmp_path / "logs" / "Error.log").read_text()


# -- the ASGI front --------------------------------------------------------------------------------
class _Seen:
    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope


async def _call(front: HttpsFront, path: str = "/api/app/ping/v1", headers: dict[str, str] | None = None,
                client: str = "203.0.113.9", method: str = "GET") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "scheme": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"a=1", "client": (client, 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "ops.example.com:5522",
                                                                      **(headers or {})}.items()]}
    await front(scope, None, send)
    return sent


async def test_proxy_headers_mark_requests_as_https(tmp_path: Path) -> None:
    seen = _Seen()
    front = HttpsFront(seen, _config(tmp_path))
    await _call(front, headers={"X-Forwarded-Proto": "https"})
    assert seen.scope["scheme"] == "https"
    await _call(front, headers={"X-Forwarded-Proto": "http"})
    assert seen.scope["scheme"] == "http"
    await _call(front, headers={"Front-End-Https": "on"})
    assert seen.scope["scheme"] == "https"


async def test_https_force_redirects_plain_http_but_not_probes_or_local_clients(tmp_path: Path) -> None:
    seen = _Seen()
    front = HttpsFront(seen, _config(tmp_path, **{"WebServer.https_force": True}))
    sent = await _call(front)
    assert sent[0]["status"] == 301
    assert dict(sent[0]["headers"])[b"location"] == b"https://ops.example.com:5523/api/app/ping/v1?a=1"
    assert (await _call(front, method="POST"))[0]["status"] == 308  # keeps the method and body
    for kwargs in ({"path": "/health"}, {"client": "127.0.0.1"}, {"headers": {"X-Forwarded-Proto": "https"}}):
        seen.scope = {}
        assert await _call(front, **kwargs) == [] and seen.scope, kwargs
    assert (await _call(front, client="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.7"}))[0]["status"] == 301


def test_a_pinned_self_signed_certificate_verifies(tmp_path: Path) -> None:
    """What a satellite does with `socket_opts.rejectUnauthorized: true` and SSL_CERT_FILE = tls.crt."""
    write_self_signed(tmp_path / "tls.crt", tmp_path / "tls.key", "conductor1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    import threading

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    with socket.create_connection(listener.getsockname()) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() is not None
        tls.sendall(b"x")
    thread.join(5)
    listener.close()
