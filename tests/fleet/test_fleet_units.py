"""Fleet rules without processes: records and groups, metrics, install helpers, the bundle, and the
hub's frame handling fuzzed with arbitrary input."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import zipfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sundial import protocol as p
from sundial.fleet import bundle
from sundial.fleet.hub import Hub, Socket
from sundial.fleet.install import initial_params, request_base_url, satellite_config
from sundial.fleet.metrics import MetricsKeeper, cast, evaluate_monitors, quick_row, rollup, source_value
from sundial.fleet.records import assign_groups, joined_record, keywords, matching_groups

GROUPS = [{"id": "web", "hostname_match": "^web", "sort_order": 1},
          {"id": "all", "hostname_match": ".+", "sort_order": 0},
          {"id": "broken", "hostname_match": "([", "sort_order": 2}]


# -- records and groups ---------------------------------------------------------------------------

def test_groups_match_in_list_order_and_broken_patterns_match_nothing() -> None:
    assert matching_groups("web01", GROUPS) == ["all", "web"]
    assert matching_groups("db01", GROUPS) == ["all"]


def test_manual_groups_are_pruned_and_fall_back_to_auto() -> None:
    record: dict[str, Any] = {"hostname": "web01", "autoGroup": False, "groups": ["web", "gone"]}
    assert assign_groups(record, GROUPS) and record["groups"] == ["web"] and record["autoGroup"] is False
    record["groups"] = ["gone"]
    assert assign_groups(record, GROUPS) and record["groups"] == ["all", "web"] and record["autoGroup"] is True
    assert not assign_groups(record, GROUPS), "no change the second time"


def test_joined_record_new_and_stored() -> None:
    hello = {"hostname": "x", "id": "s1", "info": {"cpu": {"manufacturer": "-", "vendor": "ACME", "brand": "Z1"}},
             "title": "T", "groups": ["web"], "socket_id": "forged", "created": 5}
    new = joined_record(server_id="s1", hostname="web01", ip="10.0.0.1", socket_id="ws1", hello=hello,
                        stored=None, now=100.0)
    assert new["created"] == 100.0 and new["autoGroup"] is False and new["title"] == "T"
    assert new["socket_id"] == "ws1" and new["info"]["cpu"]["combo"] == "ACME Z1"
    assert set(new["info"]) >= {"os", "memory", "cpu", "virt", "features", "monitors", "deltas"}
    stored = {**new, "title": "Kept", "ip": "10.0.0.9", "enabled": False}
    again = joined_record(server_id="s1", hostname="web01", ip="10.0.0.1", socket_id="ws2",
                          hello={**hello, "title": "Ignored"}, stored=stored, now=200.0)
    assert again["title"] == "Kept" and again["enabled"] is False and again["ip"] == "10.0.0.1"
    assert again["created"] == 100.0 and again["modified"] == 200.0 and again["socket_id"] == "ws2"
    assert "web01" in keywords(again) and "10.0.0.1" in keywords(again)


# -- metrics --------------------------------------------------------------------------------------

def test_cast_cuts_instead_of_rounding() -> None:
    assert cast(2 / 3, "float", 5) == 0.66666 and cast(-2 / 3, "float", 5) == -0.66667
    assert cast(2000 / 3, "float", 5) == 666.66666 and cast("12.9kb", "integer", 5) == 12
    assert cast("nope", "float", 2) == 0 and cast(None, "bytes", 2) == 0 and cast(1.239, "float", 2) == 1.23


def test_sources_walk_paths_and_fall_back_to_expressions() -> None:
    sample = {"cpu": {"cpus": [{"user": 5}]}, "mem": {"used": 7}}
    assert source_value("cpu.cpus[0].user", sample) == 5 and source_value("mem.missing", sample) is None
    assert source_value("mem.used * 2", sample) == 14 and source_value("((", sample) is None


def test_quick_rows_one_per_second() -> None:
    clock = [1000.2]
    keeper = MetricsKeeper(lambda: [{"id": "u", "source": "mem.used", "type": "bytes"}], lambda: [],
                           quick_max=3, clock=lambda: clock[0])
    for value in (1, 2, 3):
        keeper.add_quick("s", {"mem": {"used": value}})
    assert [(r["date"], r["u"]) for r in keeper.quick_rows("s")] == [(1000, 1), (1001, 2)], "third is a conflict"
    clock[0] = 1005.0
    for value in (4, 5):
        keeper.add_quick("s", {"mem": {"used": value}})
    assert [r["u"] for r in keeper.quick_rows("s")] == [2, 4, 5], "bounded to quick_max"
    assert quick_row([{"id": "f", "source": "x", "type": "float"}], {"x": 1.999}, 1) == {"date": 1, "f": 1.99}


def test_minute_samples_dedupe_evaluate_and_roll_up() -> None:
    clock = [6000.0]
    monitors: list[dict[str, Any]] = [{"id": "load", "source": "load[0]", "data_type": "float"},
                {"id": "rx", "source": "stats.rx", "data_type": "bytes", "delta": True, "divide_by_delta": True,
                 "delta_min_value": 0},
                {"id": "scoped", "source": "load[0]", "data_type": "float", "groups": ["other"]}]
    keeper = MetricsKeeper(lambda: [], lambda: monitors, clock=lambda: clock[0])
    first = keeper.add_minute("s", {"date": 6001.0, "data": {"load": [1.5], "stats": {"rx": 1000}}},
                              ip="i", hostname="h", groups=["main"])
    assert first is not None and first["data"]["monitors"] == {"load": 1.5, "rx": 1000}
    assert keeper.add_minute("s", {"date": 6030.0, "data": {}}, ip="i", hostname="h", groups=[]) is None
    clock[0] = 6060.0
    second = keeper.add_minute("s", {"date": 6061.0, "data": {"load": [2.5], "stats": {"rx": 7000}}},
                               ip="i", hostname="h", groups=["main"])
    assert second is not None and second["data"]["deltas"] == {"rx": 100}
    hourly = keeper.timeline("s", "hourly", 10)
    assert [i["totals"]["load"] for i in hourly] == [1.5, 2.5] and hourly[0]["epoch_div"] == 100
    daily = keeper.timeline("s", "daily", 10)
    assert daily == [{"date": 6000, "epoch_div": 50, "totals": {"load": 4.0, "rx": 8000}, "count": 2}]
    assert rollup([], 60) == []


def test_delta_monitor_without_previous_value_is_zero() -> None:
    data: dict[str, Any] = {"c": 10}
    evaluate_monitors([{"id": "c", "source": "c", "data_type": "integer", "delta": True}], data, [], None, 60)
    assert data["deltas"] == {"c": 0} and data["monitors"] == {"c": 10}


# -- install helpers ------------------------------------------------------------------------------

def test_request_base_url_keeps_host_and_honours_the_proxy() -> None:
    assert request_base_url({"host": "workers.example.test:7552"}, "h", 1) == "http://workers.example.test:7552"
    assert request_base_url({"host": "w.example:8443", "x-forwarded-proto": "https"}, "h", 1) == \
        "https://w.example:8443"
    assert request_base_url({"host": 'evil"; rm -rf /'}, "h", 5522) == "http://h:5522"


def test_initial_params_and_satellite_config() -> None:
    assert initial_params({"title": "T", "groups": [], "expires": 5, "t": "x", "icon": "i"}) == \
        {"title": "T", "icon": "i"}

    class FakeConfig:
        def __init__(self, data: dict[str, Any], explicit: set[str]) -> None:
            self.data, self.explicit = data, explicit

        def get(self, path: str, default: Any = None) -> Any:
            node: Any = self.data
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            return default if node is None else node

        def source_of(self, path: str) -> str:
            return "config.json" if path in self.explicit else "built-in defaults"

    data = {"WebServer": {"port": 7000}, "satellite": {"config": {"port": 5522, "host": "", "secure": False}}}
    assert satellite_config(FakeConfig(data, set())) == {"port": 7000, "secure": False}  # type: ignore[arg-type]
    assert satellite_config(FakeConfig(data, {"satellite.config.port"}))["port"] == 5522  # type: ignore[arg-type]


# -- bundle ---------------------------------------------------------------------------------------

def test_agent_wheel_holds_only_the_agent() -> None:
    name, data = bundle.agent_wheel(["websockets"])
    assert name.startswith("sundial_ops-") and name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        meta = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
        record = archive.read(next(n for n in names if n.endswith("/RECORD"))).decode()
    assert "sundial/protocol.py" in names and "sundial/satellite/agent.py" in names
    assert not any(n.startswith(("sundial/api/", "sundial/fleet/", "sundial/app")) for n in names)
    assert "Requires-Dist: websockets" in meta and "sundial/protocol.py,sha256=" in record


def test_every_sundial_module_the_agent_imports_travels_in_its_wheel() -> None:
    """A module the agent imports but the bundle leaves out breaks every installed satellite."""
    shipped = {name for name, _ in bundle.agent_sources()}
    needed: set[str] = set()
    for _, path in bundle.agent_sources():
        if path.suffix == ".py":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            needed.update(node.module for node in ast.walk(tree)
                          if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                          and node.module.startswith("sundial."))
    missing = {m for m in needed
               if f"{m.replace('.', '/')}.py" not in shipped and f"{m.replace('.', '/')}/__init__.py" not in shipped}
    assert "sundial.netpolicy" in needed and not missing


def test_agent_imports_are_found() -> None:
    modules = bundle.imported_modules([path for _, path in bundle.agent_sources()])
    assert {"websockets", "psutil", "pydantic", "orjson"} <= modules and "sundial" not in modules
    names = {d.metadata["Name"].lower().replace("_", "-") for d in bundle.dependency_closure(modules)}
    assert {"pydantic-core", "typing-extensions", "websockets"} <= names


# -- hub frame handling, fuzzed ------------------------------------------------------------------

class Owner:
    """A hub owner that records what reaches it."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.joined = 0

    def primary(self) -> tuple[bool, str]:
        return True, ""

    def secret_key(self) -> str:
        return "k"

    def duplicate_hostname(self, server_id: str, hostname: str) -> str | None:
        return None

    async def join(self, sock: Socket) -> dict[str, Any]:
        self.joined += 1
        return {}

    def leave(self, sock: Socket) -> None:
        pass

    def auth_failed(self, sock: Socket, reason: str) -> None:
        pass

    def on_message(self, sock: Socket, frame: p.Frame) -> None:
        p.parse_agent_message(frame)
        self.messages.append(frame.cmd)


class Log:
    def debug(self, level: int, msg: str, data: Any = None) -> None:
        pass

    def error(self, code: str, msg: str, data: Any = None) -> None:
        raise AssertionError(f"handler error logged: {msg} {data}")


def _hub() -> tuple[Hub, Owner]:
    owner = Owner()
    return Hub(owner, Log(), ping_freq=lambda: 5, ping_timeout=lambda: 30), owner  # type: ignore[arg-type]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                       max_size=4), max_leaves=20)
commands = st.sampled_from(["hello", "join", "echoback", "jobs", "job_log", "monitor", "quickmon", "notice",
                            "bogus", ""])


@settings(max_examples=300, deadline=None)
@given(cmd=commands, data=json_values, authed=st.booleans())
def test_no_frame_escapes_the_hub(cmd: str, data: Any, authed: bool) -> None:
    hub, owner = _hub()

    async def run() -> None:
        sock = Socket(ws=None, socket_id="ws1", ip="127.0.0.1", state="authed" if authed else "new",
                      server_id="s1" if authed else "")
        await hub.handle_text(sock, json.dumps({"cmd": cmd, "data": data}))
        await hub.handle_text(sock, json.dumps(data))

    asyncio.run(run())


def test_only_hello_join_echoback_before_auth() -> None:
    hub, owner = _hub()

    async def run() -> Socket:
        sock = Socket(ws=None, socket_id="ws1", ip="127.0.0.1")
        await hub.handle_text(sock, p.encode_frame("quickmon", {"mem": {}}))
        await hub.handle_text(sock, p.encode_frame("hello", {"hostname": "h", "id": "s1", "info": {}}))
        await hub.handle_text(sock, p.encode_frame("join", {"token": p.server_auth_token("s1", "k")}))
        await hub.handle_text(sock, p.encode_frame("quickmon", {"mem": {}}))
        return sock

    sock = asyncio.run(run())
    assert owner.messages == ["quickmon"] and owner.joined == 1 and sock.authed
    sent = [json.loads(item)["cmd"] for item in sock.outbox if isinstance(item, str)]
    assert sent == ["hello", "joined"]


class FakeWebSocket:
    """Just enough of Starlette's WebSocket for :meth:`Hub.endpoint`."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.client = type("Client", (), {"host": "192.0.2.7"})()

    async def accept(self) -> None:
        pass

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        await self.incoming.put({"type": "websocket.disconnect", "code": code})


def test_unauthenticated_socket_is_closed_after_the_auth_timeout() -> None:
    owner = Owner()
    hub = Hub(owner, Log(), ping_freq=lambda: 5, ping_timeout=lambda: 30, auth_timeout=0.2)  # type: ignore[arg-type]

    async def run() -> FakeWebSocket:
        ws = FakeWebSocket()
        await ws.incoming.put({"type": "websocket.receive", "text": p.encode_frame("hello", {"hostname": "h"})})
        await asyncio.wait_for(hub.endpoint(ws), 5)  # type: ignore[arg-type]
        return ws

    ws = asyncio.run(run())
    assert ws.closed_with == 1008 and [json.loads(t)["cmd"] for t in ws.sent] == ["hello"]
    assert hub.sockets == {} and owner.joined == 0


def test_keepalive_closes_a_socket_that_stops_answering() -> None:
    owner = Owner()
    hub = Hub(owner, Log(), ping_freq=lambda: 0.05, ping_timeout=lambda: 0.2)  # type: ignore[arg-type]

    async def run() -> FakeWebSocket:
        ws = FakeWebSocket()
        hub.start()
        await asyncio.wait_for(hub.endpoint(ws), 5)  # type: ignore[arg-type]
        await hub.stop()
        return ws

    ws = asyncio.run(run())
    assert ws.closed_with == 1001 and json.loads(ws.sent[0])["cmd"] == "echo"
