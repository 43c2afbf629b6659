"""How a job reads to a person: status words and tones, resource numbers, sizes.

Used as Jinja filters (registered in `render.make_environment`) so the dashboard, the job
history and the job page word a job the same way; `job.js` mirrors `status_of` for live updates.
"""

from __future__ import annotations

from typing import Any

ACTIVE_WORDS = {"queued": "Queued", "start_delay": "Waiting", "retry_delay": "Retry wait", "ready": "Starting",
                "starting": "Starting", "active": "Running", "finishing": "Finishing"}
CODE_WORDS = {"warning": ("Warning", "warn"), "critical": ("Critical", "danger"), "abort": ("Aborted", "danger")}


SUSPENDED_WORD = "Waiting for resume"


def status_of(job: dict[str, Any]) -> tuple[str, str]:
    """(word, badge tone) for a job, running or finished. A job held by a suspend action says so:
    it waits for a person, which is worth a warning tone on every list."""
    if job.get("suspended") and not job.get("final"):
        return SUSPENDED_WORD, "warn"
    if not job.get("final") and not job.get("complete"):
        return ACTIVE_WORDS.get(str(job.get("state") or ""), "Running"), "accent"
    code = job.get("code")
    if code in (0, "0", None, False, ""):
        return "Success", "ok"
    return CODE_WORDS.get(str(code), ("Error", "danger"))


def format_bytes(value: Any) -> str:
    """`1.5 MB`: binary multiples, one decimal, as a status page needs."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def resource_summary(stat: Any, kind: str) -> dict[str, str] | None:
    """Current / average / peak of a `{min, max, total, count, current}` sample block."""
    if not isinstance(stat, dict) or not stat.get("count"):
        return None
    count = float(stat.get("count") or 1)
    average = float(stat.get("total") or 0) / count

    def show(value: Any) -> str:
        number = float(value or 0)
        return f"{number:.1f}%" if kind == "cpu" else format_bytes(number)

    return {"current": show(stat.get("current")), "average": show(average), "peak": show(stat.get("max"))}


def progress_value(job: dict[str, Any]) -> float | None:
    """A determinate fraction, or None when the bar should be indeterminate (0 and 1 while running)."""
    value = job.get("progress")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if job.get("final"):
        return 1.0
    return float(value) if 0 < value < 1 else None
