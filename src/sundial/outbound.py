"""The conductor's one outbound HTTP client, under the operator's network policy.

Web hooks, and later release lists and other conductor-side fetches, all go through here, so the
air-gap lists and the proxy variables of :mod:`sundial.netpolicy` hold everywhere. The conductor
reads its proxy variables once at start; TLS verification can be turned off per request (a web
hook's `ssl_cert_bypass`), never globally.

The client (httpx, httpcore and the policy transport, several MiB) is built by the first request:
a conductor without web hooks never loads it. The settings are still read and checked at start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sundial.netpolicy.settings import AirgapRules, ProxySettings

if TYPE_CHECKING:
    import httpx

    from sundial.netpolicy.transport import AirgapTransport

MAX_BODY_BYTES = 1 << 20


# -- the client --------------------------------------------------------------------------------
@dataclass
class OutboundResult:
    """What a caller needs of a finished request; the body is capped at MAX_BODY_BYTES."""

    status: int
    reason: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    elapsed_ms: float
    redirects: int = 0
    truncated: bool = False
    timing: dict[str, float] = field(default_factory=dict)


class Outbound:
    """The shared client: `await outbound.request(...)`; one instance per conductor."""

    def __init__(self, rules: AirgapRules | None = None, proxies: ProxySettings | None = None) -> None:
        self.rules = rules or AirgapRules()
        self.proxies = proxies if proxies is not None else ProxySettings.from_env()
        self._transport: AirgapTransport | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The httpx client, created (and httpx imported) on first use."""
        if self._client is None:
            import httpx

            from sundial.netpolicy.transport import AirgapTransport

            self._transport = AirgapTransport(self.rules, self.proxies)
            self._client = httpx.AsyncClient(transport=self._transport, trust_env=False, max_redirects=32)
        return self._client

    @classmethod
    def from_config(cls, airgap: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> Outbound:
        return cls(AirgapRules.from_config(airgap), ProxySettings.from_env(environ))

    async def request(self, method: str, url: str, *, headers: list[tuple[str, str]] | None = None,
                      content: bytes | None = None, timeout: float = 30,  # noqa: ASYNC109 (passed to httpx)
                      follow: bool = False,
                      verify: bool = True, max_body: int = MAX_BODY_BYTES) -> OutboundResult:
        """One request (redirects followed when asked); raises httpx errors, OutboundRefused included."""
        import httpx

        from sundial.netpolicy.transport import VERIFY_EXTENSION

        started = time.perf_counter()
        request = self.client.build_request(method, url, headers=headers, content=content,
                                            timeout=httpx.Timeout(timeout), extensions={VERIFY_EXTENSION: verify})
        response = await self.client.send(request, follow_redirects=follow, stream=True)
        first_byte = time.perf_counter()
        try:
            body, truncated = await _read_capped(response, max_body)
        finally:
            await response.aclose()
        done = time.perf_counter()
        return OutboundResult(
            status=response.status_code, reason=response.reason_phrase, url=str(response.url),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw],
            body=body, elapsed_ms=round((done - started) * 1000, 3), redirects=len(response.history),
            truncated=truncated, timing={"wait": round((first_byte - started) * 1000, 3),
                                         "receive": round((done - first_byte) * 1000, 3),
                                         "total": round((done - started) * 1000, 3)})

    async def aclose(self) -> None:
        if self._client is not None and self._transport is not None:
            await self._client.aclose()
            await self._transport.aclose()


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False
