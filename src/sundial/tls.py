"""HTTPS for the conductor: the certificate pair, a self-signed one on first start, and the
ASGI front that knows when a request was really HTTPS (directly or behind a proxy).

Why here and not in uvicorn's hands: uvicorn would load a bad pair only when the listener
opens and answer with an OpenSSL trace; checking the pair first turns "certificate does not
match its key" into one start-up line naming both files, before any port opens.

Memory: Python's ssl module checks a good pair and a few lines of DER reading give its expiry, so
a conductor that starts with an existing pair never loads cryptography's X.509 layer (~2 MiB);
that layer is imported to write the first self-signed pair and to word what is wrong with a bad one.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sundial.config import Config, ConfigError

CERT_KEY = "WebServer.https_cert_file"
KEY_KEY = "WebServer.https_key_file"
SELF_SIGNED_DAYS = 3650
# xyOps's defaults: any of these request headers marks a request that reached a proxy over HTTPS.
DEFAULT_HEADER_DETECT: dict[str, str] = {
    "Front-End-Https": "^on$", "X-Url-Scheme": "^https$", "X-Forwarded-Protocol": "^https$",
    "X-Forwarded-Proto": "^https$", "X-Forwarded-Ssl": "^on$",
}


class TlsError(ConfigError):
    """A certificate problem that stops start-up; the message names the files."""


@dataclass(frozen=True)
class TlsFiles:
    """The pair the HTTPS listener will use."""

    cert: Path
    key: Path
    generated: bool
    not_after: dt.datetime


def prepare_tls(config: Config, hostname: str | None = None) -> TlsFiles | None:
    """The checked certificate pair when `WebServer.https` is on, else None.

    Both files missing at their default paths: generate a self-signed pair (first start) and
    reuse it afterwards. Configured paths that do not exist are an error, not a silent
    self-signed replacement, so a typo cannot downgrade a real certificate.
    """
    if not config.get("WebServer.https"):
        return None
    cert, key = config.path(CERT_KEY), config.path(KEY_KEY)
    generated = False
    if not cert.exists() and not key.exists() and _defaults(config):
        try:
            write_self_signed(cert, key, hostname or socket.gethostname())
        except OSError as exc:
            raise TlsError(f"Cannot write the self-signed HTTPS certificate to {cert.parent}: {exc.strerror} "
                           "(or set WebServer.https to false)") from None
        generated = True
    for path, name in ((cert, CERT_KEY), (key, KEY_KEY)):
        if not path.exists():
            raise TlsError(f"HTTPS {'certificate' if name == CERT_KEY else 'private key'} file not found: "
                           f"{path} ({name}, from {config.source_of(name)})")
    return TlsFiles(cert, key, generated, check_pair(cert, key))


def _defaults(config: Config) -> bool:
    return all(config.source_of(name) == "built-in defaults" for name in (CERT_KEY, KEY_KEY))


def check_pair(cert_path: Path, key_path: Path) -> dt.datetime:
    """Refuse unreadable files or a certificate whose public key is not the key's; returns expiry."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert_path), str(key_path), password=_no_password)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        _explain_bad_pair(cert_path, key_path)
        reason = exc.reason if isinstance(exc, ssl.SSLError) else None
        raise TlsError(f"OpenSSL refused the HTTPS pair {cert_path} / {key_path}: {reason or exc}") from None
    try:
        return not_after(_first_cert_der(cert_path.read_bytes()))
    except (ValueError, IndexError):  # a layout this short reader does not follow: ask cryptography
        return _load_cert(cert_path).not_valid_after_utc


def _no_password() -> bytes:
    """An encrypted key must fail here, not make OpenSSL prompt on the terminal."""
    raise ValueError("the private key is encrypted")


def _explain_bad_pair(cert_path: Path, key_path: Path) -> None:
    """Raise the TlsError that says what is wrong with a pair OpenSSL refused (cryptography reads it)."""
    from cryptography.hazmat.primitives import serialization

    cert = _load_cert(cert_path)
    key = _load_key(key_path)

    def spki(public_key: Any) -> bytes:
        return bytes(public_key.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo))

    if spki(cert.public_key()) != spki(key.public_key()):
        raise TlsError(f"The HTTPS certificate {cert_path} does not match its private key {key_path}: "
                       "the certificate was issued for a different key. Put the matching pair in place "
                       "(or delete both default files to get a new self-signed pair).")


def _load_cert(path: Path) -> Any:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except OSError as exc:
        raise TlsError(f"Cannot read the HTTPS certificate {path}: {exc.strerror}") from None
    except ValueError:
        raise TlsError(f"The HTTPS certificate {path} is not a PEM certificate") from None


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise TlsError(f"Cannot read the HTTPS private key {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise TlsError(f"The HTTPS private key {path} is not an unencrypted PEM private key") from None


# -- expiry from the certificate's DER (RFC 5280 §4.1) ---------------------------------------------
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
_UTC_TIME, _GENERALIZED_TIME, _VERSION_TAG = 0x17, 0x18, 0xA0


def _first_cert_der(pem: bytes) -> bytes:
    match = _PEM_CERT.search(pem)
    if match is None:
        raise ValueError("no PEM certificate")
    return base64.b64decode(b"".join(match.group(1).split()), validate=True)


def _der_item(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start, end) of the contents of the DER item at `pos`."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[pos:pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def not_after(der: bytes) -> dt.datetime:
    """The certificate's notAfter: Certificate > TBSCertificate > [version], serial, signature
    algorithm, issuer, Validity(notBefore, notAfter)."""
    _, tbs, _ = _der_item(der, _der_item(der, 0)[1])
    tag, _, end = _der_item(der, tbs)
    pos = end if tag == _VERSION_TAG else tbs
    for _ in range(3):  # serialNumber, signature, issuer
        pos = _der_item(der, pos)[2]
    _, validity, _ = _der_item(der, pos)
    tag, start, end = _der_item(der, _der_item(der, validity)[2])
    text = der[start:end].decode("ascii")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ; RFC 5280: YY >= 50 is 19YY
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    elif tag != _GENERALIZED_TIME:
        raise ValueError("not a certificate validity time")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)


def self_signed_pair(hostname: str, days: int = SELF_SIGNED_DAYS) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): ECDSA P-256, names the host, localhost and loopback addresses.

    Marked as its own CA so a satellite can pin it as a trust anchor (`SSL_CERT_FILE`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sundial self-signed")])
    dns = list(dict.fromkeys([hostname.lower(), "localhost"]))
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns if n]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    """Write a new pair; the key is created 0600 and both land by rename (never half-written)."""
    cert_pem, key_pem = self_signed_pair(hostname)
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, cert_pem, 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the ASGI front ------------------------------------------------------------------------------
def _compile_detect(rules: Any) -> list[tuple[bytes, re.Pattern[str]]]:
    items = rules.items() if isinstance(rules, Mapping) else DEFAULT_HEADER_DETECT.items()
    return [(str(name).lower().encode("latin-1"), re.compile(str(pattern), re.IGNORECASE))
            for name, pattern in items]


class HttpsFront:
    """Marks proxied HTTPS requests as `https` and, when asked, redirects plain HTTP to HTTPS.

    Marking matters for the session cookie's `Secure` flag and for URLs the conductor builds.
    Headers can be forged by a direct client, but that only changes how the server answers
    *that* client, so trusting them is safe (and what xyOps does).

    The redirect never applies to `/health` (proxy and monitoring probes speak HTTP), to
    WebSockets (a redirect cannot be followed there), or to loopback clients that came without
    proxy headers (the local satellite and the CLI on the conductor's own machine).
    """

    def __init__(self, app: Any, config: Config) -> None:
        self.app = app
        self.detect = _compile_detect(config.get("WebServer.https_header_detect"))
        self.force = bool(config.get("WebServer.https_force")) and bool(config.get("WebServer.https"))
        self.https_port = int(config.get("WebServer.https_port") or 443)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("scheme") in ("http", "ws") and self._proxied(scope):
            scope = {**scope, "scheme": "https" if scope["type"] == "http" else "wss"}
        if self.force and scope["type"] == "http" and scope.get("scheme") == "http" and not self._exempt(scope):
            await self._redirect(scope, send)
            return
        await self.app(scope, receive, send)

    def _proxied(self, scope: Any) -> bool:
        for name, value in scope.get("headers", ()):
            for wanted, pattern in self.detect:
                if name == wanted and pattern.search(value.decode("latin-1")):
                    return True
        return False

    def _exempt(self, scope: Any) -> bool:
        if scope.get("path") == "/health":
            return True
        client = (scope.get("client") or ("", 0))[0]
        forwarded = any(name.startswith(b"x-forwarded") for name, _ in scope.get("headers", ()))
        try:
            loopback = ipaddress.ip_address(client).is_loopback
        except ValueError:
            loopback = False
        return loopback and not forwarded

    async def _redirect(self, scope: Any, send: Any) -> None:
        headers = {name: value for name, value in scope.get("headers", ())}
        host = headers.get(b"host", b"localhost").decode("latin-1")
        host = re.sub(r":\d+$", "", host) if not host.endswith("]") else host
        port = "" if self.https_port == 443 else f":{self.https_port}"
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{host}{port}{scope.get('raw_path', b'').decode('latin-1') or scope['path']}"
        location += f"?{query}" if query else ""
        status = 301 if scope.get("method") in ("GET", "HEAD") else 308
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def preflight_tls(config: Config) -> None:
    """Check an existing HTTPS pair without generating one (`sundial restart` runs this first)."""
    if not config.get("WebServer.https"):
        return
    cert, key = config.path(CERT_KEY), config.path(KEY_KEY)
    if cert.exists() or key.exists() or not _defaults(config):
        prepare_tls(config)
