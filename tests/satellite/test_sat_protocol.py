"""The shared protocol: tokens, addresses, and that no frame can make decoding raise anything but FrameError."""

from __future__ import annotations

import contextlib
import hashlib
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sundial import protocol as p


def test_auth_token_is_hex_sha256_of_id_plus_key() -> None:
    expected = hashlib.sha256(b"satunit1UNIT_TEST").hexdigest()
    assert p.server_auth_token("satunit1", "UNIT_TEST") == expected
    assert p.job_token("jabc", expected) == hashlib.sha256(("jabc" + expected).encode()).hexdigest()


def test_nonce_is_64_hex_and_join_accepts_either_form() -> None:
    nonce = p.new_nonce()
    assert len(nonce) == 64 and int(nonce, 16) >= 0
    by_nonce = p.nonce_token(nonce, "k")
    by_id = p.server_auth_token("s1", "k")
    assert p.verify_join_token(by_nonce, nonce=nonce, server_id="s1", secret_key="k")
    assert p.verify_join_token(by_id, nonce=nonce, server_id="s1", secret_key="k")
    assert not p.verify_join_token(by_id, nonce=nonce, server_id="", secret_key="k")
    assert not p.verify_join_token("0" * 64, nonce=nonce, server_id="s1", secret_key="k")


def test_urls_use_root_path_and_bracket_ipv6() -> None:
    assert p.websocket_url("conductor", 5522, False) == "ws://conductor:5522/"
    assert p.websocket_url("::1", 5523, True) == "wss://[::1]:5523/"
    assert p.base_url("c.example", 443, True) == "https://c.example:443"


@pytest.mark.parametrize(("raw", "expected"), [("Web 01/Prod!.x", "web01prod.x"), (None, "undefined"),
                                               ("Ünïcode-Host", "unicode-host"), ("a//b", "ab")])
def test_hostname_normalisation(raw: str | None, expected: str) -> None:
    assert p.normalize_hostname(raw) == expected


BAD_FRAMES = [
    "null", "42", '"text"', "[]", "{", '{"cmd":"hello"}', '{"cmd":"hello","data":null}',
    '{"cmd":"join","data":[]}', '{"cmd":"echoback"}', '{"cmd":5,"data":{}}', '{"data":{}}',
    '{"cmd":"","data":{}}', '{"cmd":"join","data":{"token":5}}', '{"cmd":"join","data":{}}',
    '{"cmd":"hello","data":{"id":"__proto__"}}', '{"cmd":"hello","data":{"id":"constructor"}}',
    '{"cmd":"hello","data":{"id":"Not Valid"}}', '{"cmd":"hello","data":{"__proto__":{}}}',
    '{"cmd":"jobs","data":{"j1":null}}', '{"cmd":"jobs","data":{"j1":5}}', '{"cmd":"jobs","data":{"j1":"x"}}',
    '{"cmd":"jobs","data":{"__proto__":{}}}', '{"cmd":"jobs","data":{"j1":{"progress":"half"}}}',
    '{"cmd":"monitor","data":{"date":"now","data":{}}}', '{"cmd":"monitor","data":{"date":1}}',
    '{"cmd":"job_log","data":{"id":"j1"}}', '{"cmd":"job_log","data":{"id":"../x","text":"t"}}',
    '{"cmd":"monitorPluginTestResult","data":{"plugin_id":"p","request_id":"__proto__"}}',
    '{"cmd":"echoback","data":{"id":null}}', "[" * 5000 + "]" * 5000,
]


@pytest.mark.parametrize("raw", BAD_FRAMES)
def test_bad_agent_frames_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(p.FrameError) as info:
        p.decode_agent_message(raw)
    assert str(info.value)


@pytest.mark.parametrize("raw", [
    '{"cmd":"hello","data":{"nonce":"n"}}', '{"cmd":"joined","data":{"numServers":"3"}}',
    '{"cmd":"launch_job","data":{"job":{}}}', '{"cmd":"launch_job","data":{"job":{"id":"toString"}}}',
    '{"cmd":"abort_job","data":{}}', '{"cmd":"redirect","data":{"host":""}}',
    '{"cmd":"masterData","data":{"masters":"a,b"}}', '{"cmd":"echo","data":{}}',
])
def test_bad_conductor_frames_are_refused(raw: str) -> None:
    with pytest.raises(p.FrameError):
        p.decode_conductor_message(raw)


def test_unknown_commands_are_ignored_not_errors() -> None:
    assert p.decode_agent_message('{"cmd":"master","data":{}}') is None
    assert p.decode_conductor_message('{"cmd":"page_update","data":{}}') is None


def test_size_limits() -> None:
    big = p.encode_frame("job_log", {"id": "j1", "text": "x" * 1000})
    with pytest.raises(p.FrameError, match="exceeds"):
        p.decode_frame(big, max_bytes=500)
    assert p.decode_frame(big).cmd == "job_log"
    assert p.MAX_PREAUTH_FRAME_BYTES < p.MAX_FRAME_BYTES


def test_valid_frames_round_trip_with_extras_kept() -> None:
    hello = p.AgentHello(hostname="web1", id="", info={"arch": "x64"}, title="Web 1", groups=["main"])
    msg = p.decode_agent_message(p.encode_message(hello))
    assert isinstance(msg, p.AgentHello)
    assert msg.model_dump() == {"hostname": "web1", "id": "", "info": {"arch": "x64"}, "title": "Web 1",
                                "groups": ["main"]}
    jobs = p.decode_agent_message('{"cmd":"jobs","data":{"jabc1":{"progress":0.5,"table":{"rows":[]}}}}')
    assert isinstance(jobs, p.JobsUpdate)
    assert orjson.loads(p.encode_message(jobs))["data"] == {"jabc1": {"progress": 0.5, "table": {"rows": []}}}
    joined = p.decode_conductor_message(
        '{"cmd":"joined","data":{"config":{"port":5522},"masterData":{"masters":["c1"]},"numServers":2}}')
    assert isinstance(joined, p.Joined) and joined.masterData is not None
    assert joined.masterData.masters == ["c1"] and joined.numServers == 2


def test_launch_job_keeps_the_whole_job_object() -> None:
    raw = p.encode_frame("launch_job", {"job": {"id": "jx1", "command": "sh", "params": {"a": 1}},
                                        "details": {"input": {}}, "sec": {"K": "v"}})
    msg = p.decode_conductor_message(raw)
    assert isinstance(msg, p.LaunchJob)
    assert msg.job.model_dump()["params"] == {"a": 1} and msg.sec == {"K": "v"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(cmd=st.sampled_from(sorted(p.AGENT_MESSAGES) + sorted(p.CONDUCTOR_MESSAGES) + ["x"]), data=json_values)
def test_any_json_decodes_or_raises_frame_error(cmd: str, data: object) -> None:
    raw = json.dumps({"cmd": cmd, "data": data})  # stdlib: also emits integers beyond 64 bits
    for decode in (p.decode_agent_message, p.decode_conductor_message):
        with contextlib.suppress(p.FrameError):
            decode(raw)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_any_bytes_decode_or_raise_frame_error(raw: bytes) -> None:
    with contextlib.suppress(p.FrameError):
        p.decode_frame(raw)
