"""SOCKS4/4a proxies and PAC files, against real local servers: a SOCKS4 proxy (asyncio), an HTTP
forward proxy, a PAC file server and a receiver, all on loopback."""

from __future__ import annotations

import asyncio
import http.server
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from hook_receivers import ForwardProxy, Receiver

from harness import ConductorProcess, free_port, login
from sundial.netpolicy import AirgapRules, ProxyConfigError, ProxySettings, Refused
from sundial.outbound import Outbound
from sundial.tls import self_signed_pair

GRANTED, REJECTED = 0x5A, 0x5B


class Socks4Server:
    """A SOCKS4/4a proxy: records (user id, host, port) of every CONNECT, then relays both ways."""

    def __init__(self, grant: bool = True) -> None:
        self.grant = grant
        self.requests: list[tuple[str, str, int]] = []
        self.port = 0

    async def __aenter__(self) -> Socks4Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._connect(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass  # the client went away, or the test ended
        finally:
            writer.close()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(8)
        user = (await reader.readuntil(b"\0"))[:-1].decode()
        host = socket.inet_ntoa(head[4:8])
        if head[4:7] == b"\0\0\0" and head[7]:  # SOCKS4a: the name follows
            host = (await reader.readuntil(b"\0"))[:-1].decode()
        port = int.from_bytes(head[2:4], "big")
        self.requests.append((user, host, port))
        if not self.grant:
            writer.write(bytes([0, REJECTED]) + bytes(6))
            return
        up_reader, up_writer = await asyncio.open_connection(host, port)
        writer.write(bytes([0, GRANTED]) + bytes(6))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class PacServer:
    """Serves one PAC file at /proxy.pac (or an error status); counts the fetches."""

    def __init__(self, script: str, status: int = 200) -> None:
        self.script, self.status, self.fetches = script, status, 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                owner.fetches += 1
                body = owner.script.encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/x-ns-proxy-autoconfig")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/proxy.pac"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rules(**block: object) -> AirgapRules:
    return AirgapRules.from_config({"enabled": True, **block})


def via(proxy: str, **env: str) -> ProxySettings:
    return ProxySettings.from_env({"ALL_PROXY": proxy, **env})


# -- SOCKS4 --------------------------------------------------------------------------------------
async def test_socks4_sends_the_vetted_address_and_socks4a_the_name() -> None:
    receiver = Receiver()
    loopback = rules(whitelist=["127.0.0.0/8", "::1/128"])
    async with Socks4Server() as socks:
        plain = Outbound(loopback, via(f"socks4://sundial@{socks.url}"))
        named = Outbound(loopback, via(f"socks4a://{socks.url}"))
        try:
            result = await plain.request("POST", f"http://localhost:{receiver.port}/four", content=b"hi")
            assert result.status == 200 and result.body == b'{"received":true}'
            assert socks.requests == [("sundial", "127.0.0.1", receiver.port)]
            assert receiver.hits[0].path == "/four" and receiver.hits[0].body == "hi"
            await named.request("GET", f"http://localhost:{receiver.port}/four-a")
            assert socks.requests[-1] == ("", "localhost", receiver.port)  # the proxy resolves the name
        finally:
            await plain.aclose()
            await named.aclose()
            receiver.close()


async def test_https_runs_over_a_socks4_tunnel(tmp_path: Path) -> None:
    cert, key = self_signed_pair("localhost")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntls")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with Socks4Server() as socks:
        client = Outbound(AirgapRules(), ProxySettings.from_env({"HTTPS_PROXY": f"socks4a://{socks.url}"}))
        try:
            result = await client.request("GET", f"https://localhost:{port}/secure", verify=False)
            assert result.status == 200 and result.body == b"tls"
            assert socks.requests == [("", "localhost", port)]
        finally:
            await client.aclose()
            server.close()


async def test_socks4_refusals_are_clear_and_nothing_reaches_a_refused_host() -> None:
    receiver = Receiver()
    async with Socks4Server(grant=False) as rejecting, Socks4Server() as socks:
        rejected = Outbound(AirgapRules(), via(f"socks4://{rejecting.url}"))
        gapped = Outbound(rules(whitelist=["127.0.0.0/8", "::1/128"], blacklist=["127.0.0.9/32"]),
                         via(f"socks4://{socks.url}"))
        proxy_refused = Outbound(rules(blacklist=["127.0.0.1/32"]), via(f"socks4://{socks.url}"))
        dead = Outbound(AirgapRules(), via(f"socks4://127.0.0.1:{free_port()}"))
        try:
            with pytest.raises(httpx.ProxyError, match=rf"SOCKS4 proxy refused the connection to 127\.0\.0\.1:"
                                                       rf"{receiver.port} \(request rejected or failed\)"):
                await rejected.request("GET", receiver.url())
            with pytest.raises(Refused, match=r"^IP is blacklisted: 127\.0\.0\.9$"):
                await gapped.request("GET", "http://127.0.0.9:9/secret")
            with pytest.raises(httpx.ProxyError, match="has no IPv4 address, which a SOCKS4 proxy needs"):
                await gapped.request("GET", "http://[::1]:9/", timeout=5)
            with pytest.raises(Refused, match=r"^IP is blacklisted: 127\.0\.0\.1$"):  # the proxy's own address
                await proxy_refused.request("GET", "http://127.0.0.2:9/")
            with pytest.raises(httpx.ProxyError, match=r"Cannot reach the proxy socks4://127\.0\.0\.1:\d+ \(from "
                                                       "the HTTP_PROXY / HTTPS_PROXY / ALL_PROXY environment\\)"):
                await dead.request("GET", receiver.url(), timeout=5)
            assert socks.requests == [] and receiver.hits == []
        finally:
            for client in (rejected, gapped, proxy_refused, dead):
                await client.aclose()
            receiver.close()


# -- PAC files -----------------------------------------------------------------------------------
ROUTING_PAC = """
function FindProxyForURL(url, host) {
  if (shExpMatch(url, "*/via-http*")) return "PROXY 127.0.0.1:%(http)d";
  if (shExpMatch(url, "*/via-socks*")) return "SOCKS4 127.0.0.1:%(socks)d";
  if (shExpMatch(url, "*/fallback*")) return "PROXY 127.0.0.1:%(dead)d; SOCKS4 127.0.0.1:%(socks)d; DIRECT";
  if (shExpMatch(url, "*/all-dead*")) return "PROXY 127.0.0.1:%(dead)d";
  if (isPlainHostName(host) || dnsDomainIs(host, ".example.invalid")) return "PROXY 127.0.0.1:%(dead)d";
  return "DIRECT";
}
"""


async def test_pac_file_chooses_the_route_per_request_and_falls_back() -> None:
    receiver, forward = Receiver(), ForwardProxy()
    async with Socks4Server() as socks:
        pac = PacServer(ROUTING_PAC % {"http": forward.server.server_port, "socks": socks.port, "dead": free_port()})
        client = Outbound(rules(whitelist=["127.0.0.0/8"]), ProxySettings.from_env({"HTTP_PROXY": f"pac+{pac.url}"}))
        try:
            await client.request("GET", receiver.url("/direct"))
            assert forward.requests == [] and socks.requests == []
            await client.request("GET", receiver.url("/via-http"))
            assert forward.requests == [receiver.url("/via-http")]
            await client.request("GET", receiver.url("/via-socks"))
            await client.request("GET", receiver.url("/fallback"))  # dead proxy skipped, the SOCKS4 one used
            assert socks.requests == [("", "127.0.0.1", receiver.port)] * 2
            assert [hit.path for hit in receiver.hits] == ["/direct", "/via-http", "/via-socks", "/fallback"]
            with pytest.raises(httpx.ProxyError, match=r"Cannot reach the proxy http://127\.0\.0\.1:\d+ \(from "
                                                       r"the PAC file pac\+http://127\.0\.0\.1:\d+/proxy\.pac\)"):
                await client.request("GET", receiver.url("/all-dead"), timeout=5)
            assert pac.fetches == 1  # fetched once, then cached
        finally:
            await client.aclose()
            pac.close()
            forward.close()
            receiver.close()


async def test_broken_missing_or_refused_pac_files_fail_the_request_naming_the_file() -> None:
    receiver = Receiver()
    cases = [
        (PacServer("function FindProxyForURL(url, host) { return "), AirgapRules(),
         r"Cannot use the PAC file pac\+http://127\.0\.0\.1:\d+/proxy\.pac: Malformed PAC file \(SyntaxError"),
        (PacServer("gone", status=404), AirgapRules(), r"Cannot use the PAC file .*/proxy\.pac: HTTP 404 Not Found"),
        (PacServer("function FindProxyForURL(u, h) { throw new Error('no route for ' + h); }"), AirgapRules(),
         r"Cannot use the PAC file .*: Malformed PAC file \(Error: no route for 0\.0\.0\.0"),
        (PacServer("function FindProxyForURL(u, h) { if (h == '127.0.0.1') throw 'boom'; return 'DIRECT'; }"),
         AirgapRules(), r"The PAC file .* failed for 127\.0\.0\.1: boom"),
        (PacServer("function FindProxyForURL(u, h) { return 'TELNET x:1'; }"), AirgapRules(),
         r"The PAC file .* returned nothing usable for 127\.0\.0\.1: 'TELNET x:1'"),
        (PacServer("function FindProxyForURL(u, h) { return 'DIRECT'; }"), rules(blacklist=["127.0.0.1/32"]),
         r"Cannot use the PAC file .*/proxy\.pac: IP is blacklisted: 127\.0\.0\.1"),
    ]
    try:
        for pac, gap, message in cases:
            # an http(s) URL whose path ends in .pac is a PAC file too
            client = Outbound(gap, via(pac.url))
            try:
                with pytest.raises(ProxyConfigError, match=message):
                    await client.request("GET", receiver.url(), timeout=5)
            finally:
                await client.aclose()
                pac.close()
        assert receiver.hits == []
    finally:
        receiver.close()


async def test_pac_file_on_disk_socks_keyword_and_no_proxy(tmp_path: Path) -> None:
    receiver = Receiver()
    script = tmp_path / "proxy.pac"
    async with Socks4Server() as socks:
        script.write_text(f'function FindProxyForURL(url, host) {{ return "SOCKS4 127.0.0.1:{socks.port}"; }}')
        client = Outbound(AirgapRules(), via(f"pac+file://{script}"))
        bypass = Outbound(AirgapRules(), via(f"pac+file://{script}", NO_PROXY="127.0.0.1"))
        missing = Outbound(AirgapRules(), via(f"pac+file://{tmp_path}/none.pac"))
        try:
            await client.request("GET", receiver.url("/from-disk"))
            assert socks.requests == [("", "127.0.0.1", receiver.port)]
            await bypass.request("GET", receiver.url("/bypassed"))  # NO_PROXY wins over the PAC file
            assert len(socks.requests) == 1 and receiver.hits[-1].path == "/bypassed"
            with pytest.raises(ProxyConfigError, match=r"Cannot use the PAC file pac\+file://.*/none\.pac: "
                                                       r"\[Errno 2\] No such file"):
                await missing.request("GET", receiver.url())
        finally:
            for client_ in (client, bypass, missing):
                await client_.aclose()
            receiver.close()


def test_pac_answers_map_to_proxy_urls() -> None:
    from sundial.netpolicy.pac import pac_request_url, parse_routes

    assert parse_routes("PROXY a:1; SOCKS b:2;SOCKS4 c:3 ; HTTPS d:4; DIRECT") == [
        "http://a:1", "socks5://b:2", "socks4://c:3", "https://d:4", None]
    assert parse_routes(None) == [None] and parse_routes("") == [None] and parse_routes("BOGUS") == []
    assert pac_request_url(httpx.URL("https://u:p@api.example.com/hook?token=s#x")) == "https://api.example.com/"
    assert pac_request_url(httpx.URL("http://u:p@api.example.com/hook?q=1")) == "http://api.example.com/hook?q=1"


# -- through a conductor -------------------------------------------------------------------------
def test_conductor_web_hooks_follow_a_pac_file_from_its_environment(tmp_path: Path) -> None:
    receiver, forward, dead = Receiver(), ForwardProxy(), free_port()
    pac = PacServer('function FindProxyForURL(url, host) { if (shExpMatch(url, "*/via-proxy*")) '
                    f'return "PROXY 127.0.0.1:{forward.server.server_port}"; '
                    f'if (shExpMatch(url, "*/dead*")) return "PROXY 127.0.0.1:{dead}"; return "DIRECT"; }}')
    conductor = ConductorProcess(home=tmp_path / "home", env={"HTTPS_PROXY": "", "HTTP_PROXY": f"pac+{pac.url}",
                                                              "ALL_PROXY": "", "NO_PROXY": ""})
    try:
        conductor.start()
        admin = login(conductor.url, "admin", "admin")

        def hook(path: str) -> dict[str, Any]:
            return admin.call("test_web_hook", {"id": "viapac", "title": "Via PAC", "url": receiver.url(path),
                                                "method": "POST", "headers": [], "body": "x"})

        assert hook("/via-proxy")["code"] == 0
        assert forward.requests == [receiver.url("/via-proxy")]
        assert hook("/direct")["code"] == 0 and receiver.hits[-1].path == "/direct"
        failed = hook("/dead")
        assert failed["code"] == "webhook", failed
        expected = f"Cannot reach the proxy http://127.0.0.1:{dead} (from the PAC file pac+{pac.url})"
        assert expected in failed["description"], failed
        assert [hit.path for hit in receiver.hits] == ["/via-proxy", "/direct"]
        admin.close()
    finally:
        conductor.cleanup()
        pac.close()
        forward.close()
        receiver.close()
