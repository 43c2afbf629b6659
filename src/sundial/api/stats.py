"""Process figures shown by `dash_stats` and `get_multiple` (`stats`): resident memory and CPU use."""

from __future__ import annotations

import os
import time
from pathlib import Path

_CPU_MARK: list[float] = [time.monotonic(), 0.0]  # (wall, process CPU seconds) at the last reading


def rss_bytes() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def cpu_percent() -> float:
    """This process's CPU use since the previous reading (percent of one core)."""
    times = os.times()
    now, used = time.monotonic(), times.user + times.system
    wall, before = _CPU_MARK
    _CPU_MARK[:] = [now, used]
    return round(100 * (used - before) / (now - wall), 1) if now > wall else 0.0
