"""The `plugin` action: run an action plugin on the conductor (plugins-and-wire-protocol.md §4.2).

The child gets one JSON line on STDIN (the job's hook data, `env` removed, plus `xy`, `type`,
`condition`, the action's `params`, the plugin's `secrets` and the conductor's `base_url`), runs
in `plugin.cwd` (else the OS temp folder) for at most `plugin.timeout` seconds (default 60) under
the plugin's or the configured default account. Its environment is the conductor's minus our own
settings (`sundial.plugins.process`: `XYOPS_*` and `SUNDIAL_*`, which may hold database
credentials), plus the plugin's secrets, `XYOPS`, `XYOPS_BASE_URL` and every scalar action param
(so a param named like a secret wins in the environment; STDIN `secrets` keeps the secret).

The last STDOUT line decides the result: JSON with `xy` sets `code`/`description` and adds
`details`; other JSON is a success; anything else that is not blank is a "JSON Parse Error". A
non-zero exit, a timeout or a spawn failure is `code:"plugin"` with the first line of the error.
What the plugin printed is kept in the details with every secret value redacted.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from sundial.plugins.process import ProcessResult, prepare_run, run_plugin
from sundial.protocol import base_url
from sundial.vault.runtime import redact

DEFAULT_TIMEOUT = 60.0
MAX_SHOWN = 32 * 1024  # characters of each stream kept in the action's details


class _EnvTemplate(string.Template):
    idpattern = r"[A-Za-z_][A-Za-z0-9_]*"


def param_env(params: Any, env: dict[str, str]) -> None:
    """Each scalar action param as a variable (non-word chars -> `_`), `$VAR` expanded from `env`."""
    if not isinstance(params, dict):
        return
    for key, value in params.items():
        if isinstance(value, dict | list) or value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        env[re.sub(r"\W", "_", str(key))] = _EnvTemplate(text).safe_substitute(env)


def stdin_doc(hook_data: Mapping[str, Any], action: Mapping[str, Any], secrets: Mapping[str, str],
              url: str) -> dict[str, Any]:
    doc = {k: v for k, v in hook_data.items() if k != "env"}
    params = action.get("params")
    doc.update(xy=1, type="action", condition=action.get("condition", ""),
               params=dict(params) if isinstance(params, dict) else {}, secrets=dict(secrets), base_url=url)
    return doc


def _block(title: str, text: str) -> str:
    if not text.strip():
        return ""
    shown = text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "\n(output truncated)"
    return f"### {title}\n\n```\n{shown.strip()}\n```"


def _details(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def _answer(line: str) -> Any:
    """The parsed last line, or `ValueError` when it is not JSON."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ValueError(line) from None


def interpret(result: ProcessResult, secret_values: list[str]) -> tuple[int | str, str, str]:
    """(code, description, details) of one run, as the spec reads a plugin's output."""
    stdout, stderr = redact(result.stdout, secret_values), redact(result.stderr, secret_values)
    errors = _block("Plugin STDERR", stderr)
    if result.error:
        first = redact(result.error, secret_values).strip().splitlines()[0]
        return "plugin", f"Error: {first}", _details(_block("Plugin Output", stdout), errors)
    last = redact(result.last_line, secret_values)
    if not last:
        return 0, "Successfully ran Action Plugin", errors
    try:
        answer = _answer(last)
    except ValueError:
        return "plugin", "Error: JSON Parse Error: the last line of output is not JSON", \
            _details(_block("Plugin Output", stdout), errors)
    if not isinstance(answer, dict) or not answer.get("xy"):
        return 0, "Successfully ran Action Plugin", _details(_block("Plugin Output", stdout), errors)
    before = stdout.rstrip()[:-len(last)] if stdout.rstrip().endswith(last) else stdout
    code = answer.get("code") if isinstance(answer.get("code"), int | float | str) else 0
    description = str(answer.get("description") or ("Action Plugin failed" if code else
                                                     "Successfully ran Action Plugin"))
    return code or 0, description, _details(_block("Plugin Output", before), errors,
                                             str(answer.get("details") or ""))


async def run_action_plugin(plugin: Mapping[str, Any], hook_data: Mapping[str, Any], action: Mapping[str, Any], *,
                            secrets: Mapping[str, str], config: Any) -> tuple[int | str, str, str]:
    """Run one action plugin child to its end (or its timeout); never raises for the plugin's faults."""
    url = base_url("127.0.0.1", int(config.get("WebServer.port") or 5522), False)
    credentials = config.get("default_plugin_credentials.action")
    try:
        run = prepare_run(plugin, script_folder=Path(config.path("temp_dir")) / "action-plugins", secrets=secrets,
                          base_url=url, default_timeout=DEFAULT_TIMEOUT,
                          default_credentials=credentials if isinstance(credentials, dict) else None)
    except (ValueError, OSError) as exc:
        return "plugin", f"Error: {exc}", ""
    param_env(action.get("params"), run.env)
    line = orjson.dumps(stdin_doc(hook_data, action, secrets, url), default=str).decode()
    result = await run_plugin(run, line)
    return interpret(result, [v for v in secrets.values() if v])
