"""The outbound client against real local servers: air-gap lists, redirects, proxies, timeouts."""

from __future__ import annotations

import httpx
import pytest
from hook_receivers import ForwardProxy, Receiver

from sundial.netpolicy import AirgapRules, ProxyConfigError, ProxySettings, Refused, normalize_proxy
from sundial.outbound import Outbound

NO_PROXY = ProxySettings()


def rules(**block: object) -> AirgapRules:
    return AirgapRules.from_config({"enabled": True, **block})


def test_rules_name_the_refused_address() -> None:
    gap = rules(whitelist=["127.0.0.1/32", "10.0.0.0/8"], blacklist=["10.9.0.0/16"])
    assert gap.refusal("127.0.0.1") is None and gap.refusal("10.1.2.3") is None
    assert gap.refusal("10.9.1.1") == "IP is blacklisted: 10.9.1.1"
    assert gap.refusal("192.0.2.7") == "IP is not whitelisted: 192.0.2.7"
    assert gap.refusal("::ffff:10.9.0.5") == "IP is blacklisted: ::ffff:10.9.0.5"  # mapped IPv4 is still IPv4
    assert AirgapRules.from_config({"enabled": False, "blacklist": ["0.0.0.0/0"]}).refusal("1.2.3.4") is None
    assert rules(blacklist=["127.0.0.0/8"]).refusal("127.0.0.1") == "IP is blacklisted: 127.0.0.1"


async def test_allowed_request_and_hostname_checked_on_resolved_address() -> None:
    receiver = Receiver()
    client = Outbound(rules(whitelist=["127.0.0.1/32"], blacklist=["::1/128"]), NO_PROXY)
    try:
        result = await client.request("GET", f"http://localhost:{receiver.port}/ok")
        assert result.status == 200 and result.body == b'{"received":true}'
        with pytest.raises(Refused, match=r"^IP is not whitelisted: 192\.0\.2\.1$"):
            await client.request("GET", "http://192.0.2.1/never-connects")
        with pytest.raises(Refused, match=r"^IP is blacklisted: ::1$"):
            await client.request("GET", f"http://[::1]:{receiver.port}/x")
    finally:
        await client.aclose()
        receiver.close()


async def test_redirect_hops_are_checked_too() -> None:
    target = Receiver()
    hop = Receiver(redirect=f"http://127.0.0.2:{target.port}/elsewhere")
    client = Outbound(rules(whitelist=["127.0.0.1/32"], blacklist=["127.0.0.2/32"]), NO_PROXY)
    try:
        with pytest.raises(Refused, match=r"IP is blacklisted: 127\.0\.0\.2"):
            await client.request("GET", hop.url("/redirect"), follow=True)
        assert target.hits == []
        unfollowed = await client.request("GET", hop.url("/redirect"), follow=False)
        assert unfollowed.status == 302
    finally:
        await client.aclose()
        hop.close()
        target.close()


async def test_forward_proxy_from_environment_and_no_proxy() -> None:
    receiver, proxy = Receiver(), ForwardProxy()
    via_proxy = Outbound(AirgapRules(), ProxySettings.from_env({"http_proxy": proxy.url}))
    bypass = Outbound(AirgapRules(), ProxySettings.from_env({"HTTP_PROXY": proxy.url,
                                                             "NO_PROXY": "localhost,127.0.0.0/8"}))
    try:
        result = await via_proxy.request("POST", receiver.url("/through"), content=b"hello")
        assert result.status == 200
        assert proxy.requests == [receiver.url("/through")]
        assert receiver.hits[0].body == "hello"
        await bypass.request("GET", receiver.url("/direct"))
        assert len(proxy.requests) == 1 and receiver.hits[-1].path == "/direct"
    finally:
        await via_proxy.aclose()
        await bypass.aclose()
        receiver.close()
        proxy.close()


async def test_proxied_target_is_checked_before_the_proxy_sees_it() -> None:
    proxy = ForwardProxy()
    client = Outbound(rules(whitelist=["127.0.0.1/32"], blacklist=["127.0.0.9/32"]),
                      ProxySettings.from_env({"ALL_PROXY": proxy.url}))
    try:
        with pytest.raises(Refused, match=r"IP is blacklisted: 127\.0\.0\.9"):
            await client.request("GET", "http://127.0.0.9:9/secret")
        assert proxy.requests == []
    finally:
        await client.aclose()
        proxy.close()


def test_proxy_settings_parse_schemes_and_no_proxy() -> None:
    settings = ProxySettings.from_env({"HTTPS_PROXY": "proxy.corp:3128", "http_proxy": "socks://127.0.0.1:1080",
                                       "no_proxy": ".corp.example, 10.0.0.0/8,internal:8080"})
    assert settings.proxy_for(httpx.URL("https://api.example.com/")) == "http://proxy.corp:3128"
    assert settings.proxy_for(httpx.URL("http://api.example.com/")) == "socks5://127.0.0.1:1080"
    assert settings.proxy_for(httpx.URL("https://git.corp.example/")) is None
    assert settings.proxy_for(httpx.URL("http://10.2.3.4/")) is None
    assert settings.proxy_for(httpx.URL("http://internal:8080/")) is None
    assert settings.proxy_for(httpx.URL("http://internal:9090/")) == "socks5://127.0.0.1:1080"
    assert ProxySettings.from_env({}).proxy_for(httpx.URL("http://x/")) is None
    assert normalize_proxy("SOCKS4A://u@gw:1080") == "socks4a://u@gw:1080"
    assert normalize_proxy("pac+file:///etc/proxy.pac") == "pac+file:///etc/proxy.pac"
    assert normalize_proxy("http://wpad.corp/proxy.pac") == "pac+http://wpad.corp/proxy.pac"
    with pytest.raises(ProxyConfigError, match="Unsupported proxy scheme: ftp"):
        normalize_proxy("ftp://gw:21")


async def test_timeout_is_a_timeout_error() -> None:
    slow = Receiver(delay=2.0)
    client = Outbound(AirgapRules(), NO_PROXY)
    try:
        with pytest.raises(httpx.TimeoutException):
            await client.request("GET", slow.url(), timeout=0.5)
    finally:
        await client.aclose()
        slow.close()
