"""The job index: queue order, running counts and positions stay true through every state change."""

from __future__ import annotations

from typing import Any

from sundial.jobs.queues import JobIndex, group_key


def job(job_id: str, state: str, started: float, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "event": "e1", "state": state, "started": started, **extra}


def test_group_key_follows_the_queue_id_of_the_spec() -> None:
    assert group_key({"event": "e1"}) == "e1"
    assert group_key({"event": "e1", "type": "adhoc", "workflow": {"node": "n1", "job": "jw"}}) == "n1-jw-adhoc"
    assert group_key({"event": "e1", "workflow": {"nodes": []}, "type": "workflow"}) == "e1-workflow"


def test_queue_order_is_priority_then_oldest_and_survives_churn() -> None:
    index = JobIndex()
    jobs = {f"j{i}": job(f"j{i}", "queued", started=1000 + i) for i in range(5000)}
    jobs["late"] = job("late", "queued", started=999, priority=True)
    for item in jobs.values():
        index.track(item)
    assert index.queued(jobs["j0"]) == 5001 and index.running(jobs["j0"]) == 0
    assert index.next_queued("e1") == "late"
    for i in range(0, 5000, 2):  # abort every other job
        index.untrack(f"j{i}")
    jobs["late"]["state"] = "starting"
    index.update(jobs["late"])
    assert index.running(jobs["late"]) == 1 and index.queued(jobs["j1"]) == 2500
    assert index.next_queued("e1") == "j1"
    index.renumber(jobs)
    assert [jobs[f"j{i}"]["position"] for i in range(1, 5000, 2)] == list(range(1, 2501))


def test_running_and_server_counts_follow_state_changes() -> None:
    index = JobIndex()
    first = job("a", "ready", 1)
    index.track(first)
    first.update(state="active", server="s1")
    index.update(first)
    assert index.running(first) == 1 and index.on_server("s1") == 1
    first["state"] = "finishing"  # as a satellite reports it
    index.update(first)
    assert index.running(first) == 0 and index.on_server("s1") == 0
    index.untrack("a")
    assert index.event_jobs("e1") == [] and index.waiting_groups() == []
