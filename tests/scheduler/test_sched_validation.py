"""Save-time validation and normalisation of trigger lists (spec section 7)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sundial.scheduler.triggers import (
    TriggerError,
    ValidationContext,
    normalise_triggers,
    validate_triggers,
)

CONTEXT = ValidationContext(
    timezones=("America/New_York", "America/Los_Angeles", "UTC"),
    scheduler_plugins=("sched1",),
    check_plugin_params=lambda plugin_id, params: "Missing param: mode" if "mode" not in params else None,
)


def refused(triggers: Any) -> str:
    with pytest.raises(TriggerError) as caught:
        validate_triggers(triggers, CONTEXT)
    assert caught.value.code == "api"
    assert str(caught.value) == caught.value.description
    return caught.value.description


def on(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "enabled": True, **fields}


VALID = [
    on("manual"),
    on("magic", key="secret"),
    on("startup"),
    on("catchup"),
    on("schedule", minutes=[0, 30], hours=[9], timezone="America/New_York"),
    on("schedule", days=[-1, 1], months=[], weekdays=[1]),
    on("single", epoch=1766111359),
    on("range", start=1766111340, end=1766197740),
    on("range", start=1766111340),
    on("blackout", start=1766111340, end=1766111400),
    on("nth", every=3),
    on("quiet", ephemeral=True),
    on("plugin", plugin_id="sched1", params={"mode": "x"}, timezone="UTC"),
    on("keyboard", keys=["Control+KeyA"]),
]


def test_a_full_valid_list_passes() -> None:
    validate_triggers(VALID, CONTEXT)
    validate_triggers(None, CONTEXT)
    validate_triggers([], CONTEXT)


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("nope", "Malformed trigger entry #1 (not an object)"),
        (on("cron"), "Malformed trigger entry #1: Unknown type"),
        ({"enabled": True}, "Malformed trigger entry #1: Unknown type"),
        (on("schedule", hours=9), "Malformed trigger parameter: hours (must be array)"),
        (on("schedule", hours=None), "Malformed trigger parameter: hours (must be array)"),
        (on("schedule", minutes=["5"]), "Malformed trigger parameter: minutes (must be array of numbers)"),
        (on("schedule", minutes=[True]), "Malformed trigger parameter: minutes (must be array of numbers)"),
        (on("schedule", hours=[25]), "Malformed trigger parameter: hours (out of range: 25)"),
        (on("schedule", minutes=[60]), "Malformed trigger parameter: minutes (out of range: 60)"),
        (on("schedule", months=[0]), "Malformed trigger parameter: months (out of range: 0)"),
        (on("schedule", days=[0]), "Malformed trigger parameter: days (out of range: 0)"),
        (on("schedule", days=[-8]), "Malformed trigger parameter: days (out of range: -8)"),
        (on("schedule", days=[32]), "Malformed trigger parameter: days (out of range: 32)"),
        (on("schedule", weekdays=[7]), "Malformed trigger parameter: weekdays (out of range: 7)"),
        (on("schedule", years=[0]), "Malformed trigger parameter: years (out of range: 0)"),
        (on("schedule", years=[10000]), "Malformed trigger parameter: years (out of range: 10000)"),
        (on("schedule", hours=[1.5]), "Malformed trigger parameter: hours (not a whole number: 1.5)"),
        (
            on("schedule", timezone="Mars/Base One"),
            "Malformed trigger entry #1: Invalid timezone: Mars/Base One",
        ),
        (on("schedule", timezone="Mars/Base"), "Malformed trigger entry #1: Unknown timezone: Mars/Base"),
        (
            on("schedule", timezone="Europe/Paris"),
            "Malformed trigger entry #1: Unknown timezone: Europe/Paris",
        ),
        (
            on("schedule", months=[2], days=[30]),
            "Malformed trigger entry #1: Schedule can never run: days (no day [30] exists in [2])",
        ),
        (
            on("schedule", years=[2025], months=[2], days=[29]),
            "Malformed trigger entry #1: Schedule can never run: years (no matching date exists in years [2025])",
        ),
        (
            on("schedule", years=[2025], months=[12], days=[25], weekdays=[0]),
            "Malformed trigger entry #1: Schedule can never run: weekdays"
            " (no matching date in years [2025] falls on [0])",
        ),
        (
            on("interval", duration=60),
            "Malformed trigger entry #1: Invalid starting date/time specified for interval",
        ),
        (
            on("interval", start=-5, duration=60),
            "Malformed trigger entry #1: Invalid starting date/time specified for interval",
        ),
        (
            on("interval", start=1.5, duration=60),
            "Malformed trigger entry #1: Invalid starting date/time specified for interval",
        ),
        (
            on("interval", start="1766111340", duration=60),
            "Malformed trigger entry #1: Invalid starting date/time specified for interval",
        ),
        (on("interval", start=1766111340), "Malformed trigger entry #1: Interval rule is missing duration."),
        (
            on("interval", start=1766111340, duration=0),
            "Malformed trigger entry #1: Interval rule is missing duration.",
        ),
        (
            on("interval", start=1766111340, duration=0.5),
            "Malformed trigger entry #1: Interval duration must be a number of seconds, 1 or more.",
        ),
        (on("single"), "Malformed trigger entry #1: Invalid date/time specified for single shot"),
        (on("single", epoch=0), "Malformed trigger entry #1: Invalid date/time specified for single shot"),
        (on("keyboard", keys=[]), "Malformed trigger entry #1: Keyboard trigger has no shortcuts."),
        (on("keyboard"), "Malformed trigger entry #1: Keyboard trigger has no shortcuts."),
        (on("nth", every=1), "Malformed trigger entry #1: Every Nth value is invalid (must be 2 or higher)."),
        (
            on("nth", every="x"),
            "Malformed trigger entry #1: Every Nth value is invalid (must be 2 or higher).",
        ),
        (
            on("range", start="soon"),
            "Malformed trigger entry #1: Invalid start date/time specified for range",
        ),
        (on("range", end=1.5), "Malformed trigger entry #1: Invalid end date/time specified for range"),
        (
            on("range", start=200, end=100),
            "Malformed trigger entry #1: Invalid date range.  The start date cannot come after the end date.",
        ),
        (
            on("blackout", start=100),
            "Malformed trigger entry #1: Both a start and an end date are required for blackout.",
        ),
        (
            on("blackout", start="a", end=100),
            "Malformed trigger entry #1: Invalid start date/time specified for blackout",
        ),
        (
            on("blackout", start=100, end=-1),
            "Malformed trigger entry #1: Invalid end date/time specified for blackout",
        ),
        (
            on("blackout", start=200, end=100),
            "Malformed trigger entry #1: Invalid date range for blackout."
            "  The start date cannot come after the end date.",
        ),
        (on("delay"), "Malformed trigger entry #1: Starting delay rule is missing duration."),
        (
            on("delay", duration="1m"),
            "Malformed trigger entry #1: Starting delay duration must be a number of seconds.",
        ),
        (on("precision"), "Malformed trigger entry #1: Precision rule is missing seconds array."),
        (
            on("precision", seconds="0,30"),
            "Malformed trigger entry #1: Precision seconds must be an array of numbers.",
        ),
        (
            on("precision", seconds=[0, 60]),
            "Malformed trigger entry #1: Precision seconds must be whole numbers 0-59 (out of range: 60)",
        ),
        (on("quiet"), "Malformed trigger entry #1: Quiet rule must have one or more modes enabled."),
        (
            on("plugin", plugin_id="missing"),
            "Malformed trigger entry #1: Scheduler Plugin not found: missing",
        ),
        (on("plugin", plugin_id="sched1", params={}), "Malformed trigger entry #1: Missing param: mode"),
        (
            on("plugin", plugin_id="sched1", params={"mode": 1}, timezone="Nowhere/Land"),
            "Malformed trigger entry #1: Unknown timezone: Nowhere/Land",
        ),
    ],
)
def test_each_refusal_names_the_problem(trigger: Any, message: str) -> None:
    assert refused([trigger]) == message


def test_triggers_must_be_a_list() -> None:
    assert refused({"type": "manual"}) == "Malformed event parameter: triggers (must be array)"


def test_entries_are_numbered_from_one_and_first_failure_wins() -> None:
    assert refused([on("manual"), on("nth", every=1), on("cron")]).startswith("Malformed trigger entry #2:")


def test_disabled_entries_are_still_checked() -> None:
    message = refused([{"type": "schedule", "enabled": False, "hours": [99]}])
    assert message == "Malformed trigger parameter: hours (out of range: 99)"


def test_entry_checks_run_before_composition_rules() -> None:
    assert refused([on("manual"), on("manual"), on("quiet")]).endswith(
        "Quiet rule must have one or more modes enabled."
    )


@pytest.mark.parametrize(
    ("kind", "label", "extra"),
    [
        ("startup", "startup", {}),
        ("catchup", "catch-up", {}),
        ("nth", "every-nth", {"every": 2}),
        ("manual", "manual", {}),
        ("precision", "precision", {"seconds": [0]}),
        ("quiet", "quiet", {"invisible": True}),
        ("plugin", "plugin", {"plugin_id": "sched1", "params": {"mode": 1}}),
    ],
)
def test_only_one_of_each_singleton(kind: str, label: str, extra: dict[str, Any]) -> None:
    assert refused([on(kind, **extra), on(kind, **extra)]) == f"Only one {label} rule is allowed in trigger list."
    validate_triggers([on(kind, **extra), {**on(kind, **extra), "enabled": False}], CONTEXT)


def test_ranges_and_delays_may_repeat() -> None:
    validate_triggers(
        [on("range", start=60), on("range", end=120), on("delay", duration=5), on("delay", duration=9)],
        CONTEXT,
    )


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (on("interval", start=60, duration=60), on("precision", seconds=[0]), "Interval and precision"),
        (on("interval", start=60, duration=60), on("delay", duration=30), "Interval and delay"),
        (on("precision", seconds=[0]), on("delay", duration=30), "Precision and delay"),
    ],
)
def test_mutually_exclusive_pairs(first: dict[str, Any], second: dict[str, Any], message: str) -> None:
    assert refused([first, second]) == f"{message} triggers are mutually exclusive."
    validate_triggers([first, {**second, "enabled": False}], CONTEXT)


def test_default_timezone_list_is_the_system_one() -> None:
    validate_triggers([on("schedule", timezone="Pacific/Chatham")])
    with pytest.raises(TriggerError, match="Unknown timezone: Atlantis/Capital"):
        validate_triggers([on("schedule", timezone="Atlantis/Capital")])


def test_normalisation_floors_epochs_and_hashes_magic_keys() -> None:
    stored = [
        on("single", epoch=1766111359),
        on("range", start=1766111341, end=1766111399),
        on("range", end=1766111399),
        on("blackout", start=1766111341, end=1766111400),
        on("magic", key="s3cret"),
        on("magic", token="already"),
    ]
    original = [dict(t) for t in stored]
    result = normalise_triggers(stored, "e123")
    assert stored == original
    assert result[0]["epoch"] == 1766111340
    assert (result[1]["start"], result[1]["end"]) == (1766111340, 1766111340)
    assert result[2] == on("range", end=1766111340)
    assert (result[3]["start"], result[3]["end"]) == (1766111340, 1766111400)
    assert "key" not in result[4]
    assert result[4]["token"] == hashlib.sha256(b"s3crete123").hexdigest()
    assert result[5] == on("magic", token="already")
