"""Where a job's time went between `run_event` and its final record, for the debug log.

Monotonic marks per job (accepted, stored, launched, reported); the job manager logs the
stages at debug level 9 when the job ends, e.g. `store 1.9 launch 0.2 satellite 8.1 final 1.7`.
"""

from __future__ import annotations

import time

STAGES = {"stored": "store", "launched": "launch", "reported": "satellite", "saved": "final"}


class StageClock:
    def __init__(self) -> None:
        self._marks: dict[str, dict[str, float]] = {}

    def accepted(self, job_id: str) -> None:
        self._marks[job_id] = {"accept": time.monotonic()}

    def mark(self, job_id: str, stage: str) -> None:
        marks = self._marks.get(job_id)
        if marks is not None:
            marks[stage] = time.monotonic()

    def summary(self, job_id: str) -> str | None:
        """Milliseconds per stage reached, ending now (the final record saved); None when untracked."""
        marks = self._marks.get(job_id)
        if marks is None:
            return None
        marks["saved"] = time.monotonic()
        stages, last = [], marks["accept"]
        for key, label in STAGES.items():
            if key in marks:
                stages.append(f"{label} {(marks[key] - last) * 1000:.1f}")
                last = marks[key]
        return " ".join(stages)

    def forget(self, job_id: str) -> None:
        self._marks.pop(job_id, None)
