"""The plugins every new install starts with (ids and parameters as in xyOps)."""

from __future__ import annotations

from typing import Any

from sundial.objects import ObjectKind

PLUGIN = ObjectKind("plugins", "plugin", "Plugin", "p", "plugin",
                    defaults={"enabled": True, "icon": "", "notes": "", "params": []},
                    exists_message="That Plugin ID already exists: {id}")


def _p(pid: str, title: str, ptype: str, value: Any = "", **extra: Any) -> dict[str, Any]:
    return {"id": pid, "title": title, "type": ptype, "value": value, **extra}


STOCK_PLUGINS: list[dict[str, Any]] = [
    {"id": "shellplug", "title": "Shell Script", "type": "event", "command": "[shell-plugin]", "kill": "all",
     "icon": "console", "stock": True, "enabled": True, "notes": "Runs a shell script on the target server.",
     "params": [_p("script", "Script Source", "code", "#!/bin/sh\n\n# Enter your shell script code here",
                   locked=True, required=True),
                _p("annotate", "Add Date/Time Stamps to Log", "checkbox", False)]},
    {"id": "httpplug", "title": "HTTP Request", "type": "event", "command": "[http-plugin]", "kill": "parent",
     "icon": "web", "stock": True, "enabled": True, "notes": "Sends an HTTP request and reports the result.",
     "params": [_p("method", "Method", "select", "GET, HEAD, POST, PUT, DELETE"),
                _p("url", "URL", "text", "https://", required=True, locked=True),
                _p("headers", "Request Headers", "textarea", "User-Agent: Sundial/HTTP-Plugin"),
                _p("data", "POST Data", "textarea", ""),
                _p("timeout", "Timeout (Seconds)", "text", "30", variant="number"),
                _p("idle_timeout", "Idle Timeout (Seconds)", "text", "30", variant="number"),
                _p("connect_timeout", "Connect Timeout (Seconds)", "text", "10", variant="number"),
                _p("success_match", "Success Match", "text", ""),
                _p("error_match", "Error Match", "text", ""),
                _p("follow", "Follow Redirects", "checkbox", False),
                _p("download", "Download Response", "checkbox", False),
                _p("ssl_cert_bypass", "SSL Cert Bypass", "checkbox", False)]},
    {"id": "testplug", "title": "Test Plugin", "type": "event", "command": "[test-plugin]", "kill": "parent",
     "icon": "flask", "stock": True, "enabled": True, "notes": "Simulates a job for testing.",
     "params": [_p("duration", "Test Duration (seconds)", "text", "60", variant="number", required=True),
                _p("action", "Simulate Result", "select", "Success, Error, Warning, Critical, Crash"),
                _p("custom", "Custom Description", "text", ""),
                _p("burn", "Burn Memory/CPU", "checkbox", False),
                _p("network", "Network Traffic", "checkbox", False),
                _p("upload", "Upload Sample File", "checkbox", False)]},
    {"id": "hookplug", "title": "Fire Web Hook", "type": "event", "command": "[hook-plugin]", "kill": "parent",
     "icon": "webhook", "stock": True, "enabled": True, "notes": "Fires a web hook as a job.",
     "params": [_p("web_hook", "Web Hook", "system", "", list_id="web_hooks", required=True),
                _p("text", "Custom Text", "textarea", "")]},
    {"id": "open_files", "title": "Count Open Files", "type": "monitor", "command": "/bin/sh",
     "script": "cat /proc/sys/fs/file-nr", "format": "text", "groups": [], "icon": "file-multiple",
     "stock": True, "enabled": True, "notes": "Reports the number of open files (Linux)."},
]
