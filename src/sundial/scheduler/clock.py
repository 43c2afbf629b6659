"""The scheduler's clock: the wall clock, or (tests only) a sped-up one.

Minute boundaries are real wall-clock minutes in production. Tests that must cross dozens
of boundaries (kill/restart proofs) set ``SUNDIAL_SCHEDULER_CLOCK_SPEED=60`` so that one
scheduler minute passes per real second. The fast clock is a fixed linear map of real time
(around a fixed anchor), so every process and every restart agrees on "now" without any
stored state, and it never runs backwards. Unset, empty or invalid means speed 1 (inert).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

SPEED_ENV = "SUNDIAL_SCHEDULER_CLOCK_SPEED"
# Fast time equals real time at this instant (2023-11-14); any fixed value works.
ANCHOR = 1_700_000_000.0


@dataclass(frozen=True, slots=True)
class SchedulerClock:
    speed: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerClock:
        raw = (env if env is not None else os.environ).get(SPEED_ENV, "")
        try:
            speed = float(raw) if raw else 1.0
        except ValueError:
            speed = 1.0
        return cls(speed if 0 < speed <= 3600 else 1.0)

    @property
    def fast(self) -> bool:
        return self.speed != 1.0

    def now(self) -> float:
        """Scheduler time (epoch seconds)."""
        return self.from_real(time.time())

    def from_real(self, real: float) -> float:
        return real if not self.fast else ANCHOR + (real - ANCHOR) * self.speed

    def to_real(self, epoch: float) -> float:
        """The real instant at which scheduler time reaches ``epoch`` (for job timers)."""
        return epoch if not self.fast else ANCHOR + (epoch - ANCHOR) / self.speed


@lru_cache(maxsize=1)
def host_timezone() -> str:
    """The process's IANA zone name (TZ, /etc/localtime, /etc/timezone), else UTC."""
    from zoneinfo import available_timezones

    known = available_timezones()
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        link = os.readlink("/etc/localtime")
        candidates.append(link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else "")
    except OSError:
        pass
    try:
        with open("/etc/timezone", encoding="utf-8") as handle:
            candidates.append(handle.read().strip())
    except OSError:
        pass
    return next((name for name in candidates if name in known), "UTC")
