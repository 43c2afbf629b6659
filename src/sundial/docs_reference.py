"""Generates the configuration reference from the defaults, so the docs cannot drift.

    .venv/bin/python -m sundial.docs_reference --write docs/configuration.md
"""

from __future__ import annotations

import json
from typing import Any

from sundial.defaults import DEFAULTS, DESCRIPTIONS

BEGIN = "<!-- BEGIN GENERATED: config reference -->"
END = "<!-- END GENERATED: config reference -->"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _rows(data: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        description = DESCRIPTIONS.get(path, "")
        if isinstance(value, dict) and value and prefix == "" and key in ("Storage", "WebServer", "User"):
            rows.append(f"| `{path}` | | {description} |")
            rows.extend(_rows(value, path))
        else:
            rows.append(f"| `{path}` | `{_short(value)}` | {description} |")
    return rows


def render() -> str:
    lines = [BEGIN, "", "| key | default | meaning |", "|---|---|---|", *_rows(DEFAULTS), "", END]
    return "\n".join(lines)


def write(path: str) -> None:
    """Replace the generated section of a Markdown file in place."""
    from pathlib import Path

    doc = Path(path).read_text()
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    Path(path).write_text(doc[:start] + render() + doc[end:])


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write(sys.argv[2])
    else:
        print(render())
