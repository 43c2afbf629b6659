"""The job index: queue order, running counts and positions stay true through every state change."""

from __future__ import annotations

from typing import Any

from sundial.jobs.queues import JobIndex, group_key
from sundial.jobs.select import server_cap, with_room


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


def test_server_load_sums_job_weights_of_starting_and_active_jobs() -> None:
    index = JobIndex()
    heavy = job("h", "ready", 1, limits=[{"type": "job", "enabled": True, "amount": 5, "weight": 3}])
    light = job("l", "ready", 2)
    for item in (heavy, light):
        index.track(item)
        item.update(state="starting", server="s1")
        index.update(item)
    assert index.load("s1") == 4 and index.on_server("s1") == 0, "starting jobs hold their server"
    heavy["state"] = "active"
    index.update(heavy)
    assert index.load("s1") == 4 and index.on_server("s1") == 1
    index.untrack("h")
    light["state"] = "finishing"
    index.update(light)
    assert index.load("s1") == 0


def test_refile_moves_a_queued_job_to_its_new_group_and_place() -> None:
    index = JobIndex()
    jobs = {j: job(j, "queued", started=n) for n, j in enumerate(("a", "b", "c"))}
    for item in jobs.values():
        index.track(item)
    jobs["c"]["priority"] = True
    index.refile(jobs["c"])
    assert index.next_queued("e1") == "c"
    jobs["b"]["type"] = "urgent"
    index.refile(jobs["b"])
    assert index.key_of("b") == "e1-urgent" and index.next_queued("e1-urgent") == "b"
    assert index.queued(jobs["a"]) == 2 and sorted(index.waiting_groups()) == ["e1", "e1-urgent"]
    index.renumber(jobs)
    assert (jobs["c"]["position"], jobs["a"]["position"], jobs["b"]["position"]) == (1, 2, 1)
    index.untrack("b")
    assert index.waiting_groups() == ["e1"]


def test_server_cap_is_max_jobs_else_the_smallest_group_cap() -> None:
    groups = {"g1": {"max_jobs_per_server": 4}, "g2": {"max_jobs_per_server": 2}, "g3": {"max_jobs_per_server": 0}}
    servers = [{"id": "own", "maxJobs": 1, "groups": ["g2"]}, {"id": "grp", "maxJobs": 0, "groups": ["g1", "g2", "g3"]},
               {"id": "free", "groups": ["g3"]}]
    assert [server_cap(s, groups.get) for s in servers] == [1, 2, 0]
    load = {"own": 1.0, "grp": 1.0, "free": 50.0}.__getitem__
    assert [s["id"] for s in with_room(servers, 1, load, groups.get)] == ["grp", "free"]
    assert [s["id"] for s in with_room(servers, 2, load, groups.get)] == ["free"], "weight 2 no longer fits"
