"""Secret parameter checks: names, values, limits, lists; errors name limits, never values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sundial.vault.errors import VaultError
from sundial.vault.validation import (
    MAX_FIELDS_PER_SECRET,
    MAX_FIELDS_TOTAL_BYTES,
    MAX_NAME_LENGTH,
    MAX_VALUE_BYTES,
    RESERVED_NAMES,
    field_names,
    validate_assignments,
    validate_fields,
    validate_id_list,
    validate_name,
    validate_object_id,
)


def _refused(raw: Any, **kwargs: Any) -> VaultError:
    with pytest.raises(VaultError) as caught:
        validate_fields(raw, **kwargs)
    assert caught.value.code == "api"
    return caught.value


def test_fields_are_normalised_in_order() -> None:
    raw = [{"name": "B", "value": "2", "extra": "dropped"}, {"value": "1", "name": "A_1"}]
    fields = validate_fields(raw)
    assert fields == [{"name": "B", "value": "2"}, {"name": "A_1", "value": "1"}]
    assert [list(field) for field in fields] == [["name", "value"], ["name", "value"]]
    assert field_names(fields) == ["B", "A_1"]


def test_empty_fields_are_allowed() -> None:
    assert validate_fields([]) == []


@pytest.mark.parametrize("raw", [None, "x", {"name": "A", "value": "b"}, 3])
def test_fields_must_be_an_array(raw: Any) -> None:
    assert _refused(raw).description == "Parameter is not an array: fields"


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "Ä", "A=B", "", "a.b", "__proto__", "constructor",
                                  "toString", "0"])
def test_strict_names_follow_posix_rules_and_avoid_reserved_words(name: str) -> None:
    error = _refused([{"name": name, "value": "v"}], posix=True)
    assert name in error.description


def test_default_names_are_lenient_but_refuse_the_impossible() -> None:
    assert validate_fields([{"name": "my-var.1", "value": "v"}])[0]["name"] == "my-var.1"
    for name in ("__proto__", "A=B", "A\x00B", ""):
        _refused([{"name": name, "value": "v"}])


def test_long_names_are_refused_without_echo() -> None:
    error = _refused([{"name": "N" * (MAX_NAME_LENGTH + 1), "value": "v"}])
    assert str(MAX_NAME_LENGTH) in error.description and "N" * 20 not in error.description
    assert validate_name("N" * MAX_NAME_LENGTH) == "N" * MAX_NAME_LENGTH


def test_duplicate_names_are_kept_as_sent() -> None:
    """xyOps accepts a repeated name (secrets-and-webhooks.md §1 does not forbid it)."""
    fields = [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}, {"name": "A", "value": "2"}]
    assert validate_fields(fields) == fields
    assert field_names(validate_fields(fields)) == ["A", "B", "A"]


@pytest.mark.parametrize("value", [1, None, True, ["x"], {"v": "x"}])
def test_values_must_be_strings(value: Any) -> None:
    assert _refused([{"name": "A", "value": value}]).description == "Secret value must be a string: A"


@pytest.mark.parametrize("item", ["A=b", ["A", "b"], None])
def test_items_must_be_objects(item: Any) -> None:
    assert "item 0" in _refused([item]).description


def test_value_size_limit_names_the_limit_not_the_value(no_leak: Any) -> None:
    value = "synthetic-big-" + "x" * MAX_VALUE_BYTES
    error = _refused([{"name": "BIG", "value": value}])
    assert str(MAX_VALUE_BYTES) in error.description and "BIG" in error.description
    no_leak(error.description, value[:20], "the error")
    assert validate_fields([{"name": "FULL", "value": "x" * MAX_VALUE_BYTES}])


def test_value_size_counts_utf8_bytes() -> None:
    _refused([{"name": "WIDE", "value": "é" * (MAX_VALUE_BYTES // 2 + 1)}])


def test_total_size_limit() -> None:
    per_field = MAX_VALUE_BYTES - 10
    count = MAX_FIELDS_TOTAL_BYTES // per_field + 1
    error = _refused([{"name": f"F{i}", "value": "x" * per_field} for i in range(count)])
    assert str(MAX_FIELDS_TOTAL_BYTES) in error.description


def test_field_count_limit() -> None:
    error = _refused([{"name": f"F{i}", "value": ""} for i in range(MAX_FIELDS_PER_SECRET + 1)])
    assert str(MAX_FIELDS_PER_SECRET) in error.description


@pytest.mark.parametrize("value", ["abc\x00def", "bad\ud800surrogate"])
def test_values_no_environment_can_carry_are_refused(value: str, no_leak: Any) -> None:
    error = _refused([{"name": "A", "value": value}])
    no_leak(error.description, value[:3], "the error")


ENV_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
ENV_VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=50)


@given(st.lists(st.tuples(ENV_NAMES, ENV_VALUES), max_size=10, unique_by=lambda pair: pair[0]))
def test_any_valid_input_passes_unchanged(pairs: list[tuple[str, str]]) -> None:
    raw = [{"name": name, "value": value} for name, value in pairs if name not in RESERVED_NAMES]
    assert validate_fields(raw) == raw


def test_object_ids() -> None:
    assert validate_object_id("z_abc123") == "z_abc123"
    with pytest.raises(VaultError, match="Missing parameter: id"):
        validate_object_id(None)
    for bad in ("Upper", "a-b", "a b", 5, "x" * 129, "abc\n"):
        with pytest.raises(VaultError, match="Malformed parameter: id"):
            validate_object_id(bad)


@pytest.mark.parametrize("raw", ["event1", {"a": 1}, None, 7])
def test_assignment_lists_must_be_arrays(raw: Any) -> None:
    with pytest.raises(VaultError) as caught:
        validate_id_list(raw, "events")
    assert (caught.value.code, caught.value.description) == ("api", "Parameter is not an array: events")


def test_assignment_list_items_must_be_ids() -> None:
    with pytest.raises(VaultError, match=r"Malformed parameter: plugins \(item 1"):
        validate_id_list(["shellplug", 3], "plugins")
    assert validate_id_list(["a", "b", "a"], "plugins") == ["a", "b"]


def test_only_present_assignment_lists_are_returned() -> None:
    assert validate_assignments({"events": ["e1"], "title": "x"}) == {"events": ["e1"]}
    with pytest.raises(VaultError, match="web_hooks"):
        validate_assignments({"web_hooks": "w1"})
