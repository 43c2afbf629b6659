"""The built-in plugins as real child processes, spoken to over the wire protocol.

Each test starts ``python -m sundial.satellite.plugins <name>`` through the agent's process runner,
hands it a job document on stdin and reads what it prints, exactly as the agent does.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from http_peer import PeerServer
from sat_peer import until

from harness import free_port
from sundial.satellite.plugins import builtin_argv
from sundial.satellite.plugins.selftest import pick_duration
from sundial.satellite.plugins.shell import LineSplitter
from sundial.satellite.plugins.wire import substitute
from sundial.satellite.process import ChildProcess, KillMode, ProcessResult, ProcessSpec, run_process

SECRET = "s3cr3t-Value-42"


class Run:
    """A plugin run: its exit, its protocol messages and its log text."""

    def __init__(self) -> None:
        self.result: ProcessResult | None = None
        self.messages: list[dict[str, Any]] = []
        self.logs: list[str] = []
        self.notices: list[str] = []

    @property
    def log(self) -> str:
        return "".join(self.logs)

    @property
    def final(self) -> dict[str, Any]:
        finals = [m for m in self.messages if "code" in m]
        assert finals, f"no result reported; log: {self.log[-2000:]}"
        return finals[0]

    def kwargs(self) -> dict[str, Any]:
        return {"on_log": self.logs.append, "on_message": self.messages.append, "on_notice": self.notices.append}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return {**env, **extra}


def job_doc(tmp_path: Path, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"xy": 1, "type": "event", "id": "jplug1", "server": "satunit1", "params": params,
            "secrets": {"API_KEY": SECRET}, "temp_dir": str(tmp_path), "cwd": str(tmp_path), **extra}


async def run_plugin(name: str, doc: dict[str, Any], cwd: Path, env: dict[str, str] | None = None) -> Run:
    run = Run()
    spec = ProcessSpec(builtin_argv(name), stdin_doc=doc, env=env or clean_env(), cwd=str(cwd), kill_timeout=2,
                       sample_interval=None)
    run.result = await run_process(spec, **run.kwargs())
    return run


# -- shell ------------------------------------------------------------------------------------------


async def test_shell_progress_annotation_passthrough_and_stdin(tmp_path: Path) -> None:
    script = ("#!/bin/sh\r\n"
              "read -r doc\n"
              "case \"$doc\" in *jplug1*) echo 'got the job document';; esac\n"
              "echo ' 42% '\n"
              "echo 250%\n"
              "echo '{\"xy\":1,\"status\":\"halfway\"}'\n"
              "echo \"param=$greeting\"\n")
    doc = job_doc(tmp_path, {"script": script, "annotate": True})
    run = await run_plugin("shell-plugin", doc, tmp_path, clean_env(greeting="hello"))
    assert [m["progress"] for m in run.messages if "progress" in m] == [0.42, 1.0], "N% is clamped to 100"
    assert {"xy": 1, "status": "halfway"} in run.messages, "JSON lines pass through for the agent to parse"
    lines = run.log.splitlines()
    assert any(line.endswith("] got the job document") and line.startswith("[20") for line in lines)
    assert any(line.endswith("] param=hello") for line in lines)
    assert "%" not in run.log, "progress lines are not logged"
    assert run.final == {"xy": 1, "code": 0, "description": "Script exited with code: 0"}
    assert not [n for n in os.listdir(tmp_path) if n.startswith("xyops-script-temp-")], "temp script removed"


async def test_shell_failure_keeps_stderr_and_explains_itself(tmp_path: Path) -> None:
    script = "#!/bin/sh\necho working\necho 'disk full' >&2\necho 'second line' >&2\nexit 3\n"
    run = await run_plugin("shell-plugin", job_doc(tmp_path, {"script": script}), tmp_path)
    final = run.final
    assert final["code"] == 3 and final["description"] == "Script exited with code: 3: disk full"
    assert final["html"] == {"title": "Error Output", "content": "<pre>disk full\nsecond line</pre>"}
    assert "working\n" in run.log and "disk full" in run.log, "stdout and stderr both reach the log"


async def test_shell_shebang_decides_and_plain_scripts_use_sh(tmp_path: Path) -> None:
    python = f"#!{sys.executable}\nimport sys\nprint('from python', sys.version_info[0])\n"
    py, sh = await asyncio.gather(
        run_plugin("shell-plugin", job_doc(tmp_path, {"script": python}, id="jpy"), tmp_path),
        run_plugin("shell-plugin", job_doc(tmp_path, {"script": "echo no shebang here\n"}, id="jsh"), tmp_path))
    assert "from python 3" in py.log and py.final["code"] == 0
    assert "no shebang here" in sh.log and sh.final["code"] == 0


async def test_shell_script_killed_by_a_signal_reports_the_signal(tmp_path: Path) -> None:
    run = await run_plugin("shell-plugin", job_doc(tmp_path, {"script": "#!/bin/sh\nkill -9 $$\n"}), tmp_path)
    assert run.final["code"] == "SIGKILL" and run.final["description"] == "Script exited with code: SIGKILL"


async def test_shell_relays_sigterm_to_the_script(tmp_path: Path) -> None:
    script = "#!/bin/sh\ntrap 'echo got TERM; exit 7' TERM\necho ready\nwhile :; do sleep 0.05; done\n"
    run = Run()
    spec = ProcessSpec(builtin_argv("shell-plugin"), stdin_doc=job_doc(tmp_path, {"script": script}),
                       env=clean_env(), cwd=str(tmp_path), kill_timeout=5, sample_interval=None)
    child = ChildProcess(spec, **run.kwargs())
    await child.start()
    await until(lambda: "ready" in run.log, "the script to start")
    await child.abort("test", KillMode.PARENT)  # SIGTERM to the plugin only: it must pass it on
    result = await child.wait()
    assert "got TERM" in run.log
    assert run.final["code"] == 7 and result.exit_code == 0, "the plugin outlives its script and reports"


async def test_shell_relays_huge_lines_and_binary_garbage_intact(tmp_path: Path) -> None:
    script = ("#!/bin/sh\n"
              "head -c 3000000 /dev/zero | tr '\\0' 'a'; echo\n"
              "printf '\\377\\376 garbage \\001\\n'\n"
              "echo '{\"xy\":1,\"status\":\"after\"}'\n")
    run = await run_plugin("shell-plugin", job_doc(tmp_path, {"script": script, "annotate": True}), tmp_path)
    assert "a" * 3000000 in run.log, "a line beyond the plugin's buffer is relayed whole"
    assert "garbage" in run.log and {"xy": 1, "status": "after"} in run.messages
    assert run.final["code"] == 0


def test_line_splitter_never_holds_more_than_its_limit() -> None:
    lines = LineSplitter(limit=8)
    pieces = lines.feed(b"ab\ncdefghijklmn\nxy") + lines.feed(b"z\n0123456789") + lines.finish()
    assert pieces == [(b"ab\n", "line"), (b"cdefghij", "head"), (b"klmn\n", "tail"), (b"xyz\n", "line"),
                      (b"01234567", "head"), (b"89", "tail"), (b"\n", "tail")]
    assert all(len(piece) <= 8 or kind == "tail" for piece, kind in pieces)


async def test_shell_without_script_is_a_clear_error(tmp_path: Path) -> None:
    run = await run_plugin("shell-plugin", job_doc(tmp_path, {"script": "  "}), tmp_path)
    assert run.final["code"] == 1 and "No script" in run.final["description"]


# -- test plugin ------------------------------------------------------------------------------------


async def test_test_plugin_success_with_outputs_and_upload(tmp_path: Path, http_peer: PeerServer) -> None:
    params = {"duration": 1.5, "action": "Success", "custom": "hi", "upload": True, "network": True, "burn": True}
    run = await run_plugin("test-plugin", job_doc(tmp_path, params, base_url=http_peer.url), tmp_path)
    progress = [m["progress"] for m in run.messages if "progress" in m]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) == 2, "one update a second"
    final = run.final
    assert final["code"] == 0 and final["description"] == "Success!"
    assert final["data"]["custom"] == "hi" and final["data"]["network_bytes"] > 0
    assert {"table", "html", "perf"} <= final.keys()
    pushed = [m["push"]["files"] for m in run.messages if "push" in m]
    assert pushed == [["test-output-jplug1.txt"]] and (tmp_path / "test-output-jplug1.txt").is_file()


async def test_test_plugin_result_follows_action(tmp_path: Path) -> None:
    expected = {"Error": 999, "Warning": "warning", "Critical": "critical"}
    runs = await asyncio.gather(*(run_plugin("test-plugin", job_doc(tmp_path, {"duration": 0, "action": action}),
                                             tmp_path) for action in [*expected, "Crash"]))
    for run, code in zip(runs, expected.values(), strict=False):
        assert run.final["code"] == code and run.final["description"]
    crash = runs[-1]
    assert not [m for m in crash.messages if "code" in m], "Crash exits without a result"
    assert crash.result is not None and crash.result.exit_code == 1 and "crashing on purpose" in crash.log


def test_duration_may_be_a_random_range() -> None:
    rng = random.Random(5)
    assert {pick_duration("2-4", rng) for _ in range(50)} == {2.0, 3.0, 4.0}
    assert pick_duration(0.5) == 0.5 and pick_duration("nonsense") == 60.0 and pick_duration(-3) == 0.0


# -- HTTP -------------------------------------------------------------------------------------------


def http_params(url: str, **extra: Any) -> dict[str, Any]:
    return {"method": "GET", "url": url, "headers": "User-Agent: Sundial-Test", "timeout": 10,
            "idle_timeout": 5, "connect_timeout": 5, **extra}


async def test_http_post_with_placeholders_and_secret_scrubbing(tmp_path: Path, http_peer: PeerServer) -> None:
    params = http_params(http_peer.url + "/echo?job=[id]", method="POST", data='{"who":"[params.name]"}',
                         headers="Authorization: Bearer [secrets.API_KEY]\nX-Empty-Line-Next: 1\n\nbadline",
                         name="ada")
    run = await run_plugin("http-plugin", job_doc(tmp_path, params), tmp_path)
    seen = http_peer.recorder.requests[-1]
    assert seen["path"] == "/echo?job=jplug1" and seen["body"] == b'{"who":"ada"}'
    assert seen["headers"]["Authorization"] == f"Bearer {SECRET}", "the secret is really sent"
    final = run.final
    assert final["code"] == 0 and final["description"] == "Success (HTTP 200 OK)"
    assert final["data"]["statusCode"] == 200 and final["data"]["json"]["method"] == "POST"
    assert final["data"]["headers"]["content-type"] == "application/json"
    details = final["markdown"]["content"]
    assert final["markdown"]["title"] == "HTTP Request Details" and "Bearer ********" in details
    assert SECRET not in details and SECRET not in final["description"], "secrets never shown in details"
    assert final["perf"]["total"] > 0


async def test_http_status_and_body_patterns_decide(tmp_path: Path, http_peer: PeerServer) -> None:
    cases = [
        (http_params(http_peer.url + "/status/503"), 503, "HTTP 503 Service Unavailable"),
        (http_params(http_peer.url + "/text", error_match="nominal"), 1, "matched the error pattern"),
        (http_params(http_peer.url + "/text", success_match="^OK$"), 1, "did not match the success pattern"),
        (http_params(http_peer.url + "/text", success_match="systems"), 0, "Success (HTTP 200 OK)"),
        (http_params(http_peer.url + "/text", success_match="("), 1, "Invalid success match pattern"),
        (http_params("ftp://example.com/x"), 1, "Malformed URL"),
        (http_params("http://127.0.0.1:9/x"), 1, "HTTP Error: ConnectError"),
    ]
    runs = await asyncio.gather(*(run_plugin("http-plugin", job_doc(tmp_path, params), tmp_path)
                                  for params, _c, _d in cases))
    for run, (_p, code, description) in zip(runs, cases, strict=True):
        assert run.final["code"] == code and description in run.final["description"], run.final


async def test_http_redirects_only_when_asked(tmp_path: Path, http_peer: PeerServer) -> None:
    cases = [http_params(http_peer.url + "/redirect"), http_params(http_peer.url + "/redirect", follow=True),
             http_params(http_peer.url + "/loop", follow=True)]
    stay, follow, loop = await asyncio.gather(*(run_plugin("http-plugin", job_doc(tmp_path, params), tmp_path)
                                                for params in cases))
    assert stay.final["data"]["statusCode"] == 302 and stay.final["code"] == 0
    assert follow.final["data"]["statusCode"] == 200 and "**Redirects:** 1" in follow.final["markdown"]["content"]
    assert loop.final["code"] == 1 and "Too many redirects" in loop.final["description"]


async def test_http_download_becomes_an_output_file(tmp_path: Path, http_peer: PeerServer) -> None:
    params = http_params(http_peer.url + "/download", download=True)
    run = await run_plugin("http-plugin", job_doc(tmp_path, params), tmp_path)
    assert run.final["files"] == ["report.csv"] and (tmp_path / "report.csv").read_bytes() == b"a,b\n1,2\n"


async def test_http_timeouts(tmp_path: Path, http_peer: PeerServer) -> None:
    total = http_params(http_peer.url + "/trickle", timeout=1, idle_timeout=5)
    idle = http_params(http_peer.url + "/stall", timeout=10, idle_timeout=0.5)
    runs = await asyncio.gather(run_plugin("http-plugin", job_doc(tmp_path, total), tmp_path),
                                run_plugin("http-plugin", job_doc(tmp_path, idle), tmp_path))
    assert runs[0].final["description"] == "HTTP request timed out after 1 seconds."
    assert runs[1].final["code"] == 1 and "ReadTimeout" in runs[1].final["description"]


async def test_http_airgap_lists_apply_to_the_resolved_address(tmp_path: Path, http_peer: PeerServer) -> None:
    port = http_peer.server_address[1]
    blocked = {"enabled": True, "whitelist": ["10.0.0.0/8"], "blacklist": []}
    black = {"enabled": True, "whitelist": [], "blacklist": ["127.0.0.0/8", "::1/128"]}
    allowed = {"enabled": True, "whitelist": ["127.0.0.1/32", "::1/128"], "blacklist": []}
    hop = {"enabled": True, "whitelist": ["127.0.0.1/32"], "blacklist": []}
    url = f"http://localhost:{port}/text"
    cases = [(url, blocked), (url, black), (url, allowed), (f"http://127.0.0.1:{port}/redirect", hop)]
    runs = await asyncio.gather(*(run_plugin("http-plugin", job_doc(tmp_path, http_params(u, follow=True), airgap=gap),
                                             tmp_path) for u, gap in cases))
    assert runs[0].final["code"] == 1 and runs[0].final["description"].startswith("IP is not whitelisted: ")
    assert runs[1].final["description"].startswith("IP is blacklisted: ")
    assert runs[2].final["code"] == 0
    assert runs[3].final["code"] == 0 and runs[3].final["data"]["json"]["method"] == "GET", "redirect hop vetted too"


async def test_http_plugin_follows_the_jobs_proxy_variables_pac_files_included(tmp_path: Path,
                                                                               http_peer: PeerServer) -> None:
    dead = free_port()
    pac = tmp_path / "proxy.pac"
    pac.write_text(f'function FindProxyForURL(url, host) {{ return shExpMatch(url, "*/text") '
                   f'? "PROXY 127.0.0.1:{dead}; DIRECT" : "PROXY 127.0.0.1:{dead}"; }}')
    env = clean_env(HTTP_PROXY=f"pac+file://{pac}", NO_PROXY="")
    fallback, no_route = await asyncio.gather(*(
        run_plugin("http-plugin", job_doc(tmp_path, http_params(http_peer.url + path)), tmp_path, env)
        for path in ("/text", "/echo")))
    assert fallback.final["code"] == 0, fallback.final  # the dead proxy made way for DIRECT
    assert no_route.final["code"] == 1
    assert no_route.final["description"] == (
        f"HTTP Error: ProxyError: Cannot reach the proxy http://127.0.0.1:{dead} (from the PAC file "
        f"pac+file://{pac}): All connection attempts failed")


def test_placeholders_leave_unknown_paths_alone() -> None:
    doc = {"id": "j1", "params": {"n": 5, "flag": True, "obj": {"a": 1}}, "list": ["x", "y"]}
    assert substitute("[id]/[params.n]/[params.flag]/[params.obj]/[list.1]", doc) == 'j1/5/true/{"a":1}/y'
    assert substitute("http://[::1]:80/[nope.x]", doc) == "http://[::1]:80/[nope.x]"


# -- fire web hook ----------------------------------------------------------------------------------


async def test_hook_plugin_posts_to_the_conductor_and_takes_its_result(tmp_path: Path,
                                                                      http_peer: PeerServer) -> None:
    def doc(hook: str) -> dict[str, Any]:
        return job_doc(tmp_path, {"web_hook": hook, "text": "deploy done"}, base_url=http_peer.url)

    ok, failing, missing = await asyncio.gather(*(run_plugin("hook-plugin", doc(h), tmp_path)
                                                  for h in ("example_hook", "failing", "no_such_verb")))
    assert {"job": "jplug1", "server": "satunit1", "web_hook": "example_hook", "text": "deploy done"} \
        in http_peer.recorder.hooks
    assert ok.final["code"] == 0 and ok.final["description"] == "Web hook fired."
    assert ok.final["markdown"]["content"] == "Sent to example."
    assert failing.final["code"] == "webhook" and "500" in failing.final["description"]
    assert missing.final["code"] == 1 and "does not support fire_job_web_hook yet" in missing.final["description"]


async def test_plugins_reach_the_conductor_without_the_jobs_proxy_variables(tmp_path: Path,
                                                                           http_peer: PeerServer) -> None:
    dead = f"socks4://127.0.0.1:{free_port()}"
    env = clean_env(HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY="pac+http://127.0.0.1:9/proxy.pac")
    doc = job_doc(tmp_path, {"web_hook": "example_hook", "text": "via no proxy"}, base_url=http_peer.url)
    run = await run_plugin("hook-plugin", doc, tmp_path, env)
    assert run.final["code"] == 0 and run.final["description"] == "Web hook fired.", run.log


# -- entry point ------------------------------------------------------------------------------------


async def test_unknown_plugin_name_and_bad_stdin(tmp_path: Path) -> None:
    run = Run()
    bad_name = ProcessSpec(builtin_argv("shell-plugin")[:-1] + ["nope"], sample_interval=None)
    no_doc = ProcessSpec(builtin_argv("test-plugin"), stdin_doc=None, cwd=str(tmp_path), sample_interval=None)
    result, run.result = await asyncio.gather(run_process(bad_name), run_process(no_doc, **run.kwargs()))
    assert result.exit_code == 2
    assert run.final["code"] == 1 and "job document" in run.final["description"]


def test_builtin_argv_is_isolated_from_the_job_directory() -> None:
    argv = builtin_argv("http-plugin")
    assert argv[-3:] == ["-m", "sundial.satellite.plugins", "http-plugin"] and "-P" in argv
    with pytest.raises(KeyError):
        builtin_argv("docker-plugin")
