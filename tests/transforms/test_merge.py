from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.merge import flatten, three_way_merge, unflatten

BASE = {
    "entity_id": "e",
    "email_address": "old@example.com",
    "billing": {"first_name": "Ada", "last_name": "Lovelace", "city": "London"},
}


def test_source_changes_win_and_remote_edits_are_kept_as_drift() -> None:
    source = {**BASE, "email_address": "new@example.com"}
    remote = {
        **BASE,
        "phone_number": "+44 20 1",  # added at the provider
        "billing": {**BASE["billing"], "city": "Leeds"},  # edited at the provider
    }
    result = three_way_merge(BASE, source, remote)
    assert result.merged == {
        "entity_id": "e",
        "email_address": "new@example.com",
        "phone_number": "+44 20 1",
        "billing": {"first_name": "Ada", "last_name": "Lovelace", "city": "Leeds"},
    }
    assert result.changed == ("email_address",)
    assert result.drift == ("billing.city", "phone_number")
    assert result.conflicts == ()


def test_both_sides_changing_a_field_is_a_conflict_the_source_wins() -> None:
    source = {**BASE, "billing": {**BASE["billing"], "city": "York"}}
    remote = {**BASE, "billing": {**BASE["billing"], "city": "Leeds"}}
    result = three_way_merge(BASE, source, remote)
    assert result.merged["billing"]["city"] == "York"
    assert result.conflicts == ("billing.city",)
    assert result.drift == ()
    assert result.changed == ("billing.city",)


def test_a_field_the_source_removed_is_removed() -> None:
    source = {**BASE, "billing": {"first_name": "Ada", "last_name": "Lovelace"}}
    result = three_way_merge(BASE, source, BASE)
    assert "city" not in result.merged["billing"]
    assert result.changed == ("billing.city",)


def test_without_a_base_the_source_wins_where_it_has_a_value() -> None:
    source = {"entity_id": "e", "billing": {"first_name": "Ada"}}
    remote = {"entity_id": "e", "billing": {"first_name": "Adelaide", "city": "Paris"}}
    result = three_way_merge(None, source, remote)
    assert result.merged == {"entity_id": "e", "billing": {"first_name": "Ada", "city": "Paris"}}
    assert result.drift == () and result.conflicts == ()


def test_same_change_on_both_sides_is_neither_drift_nor_conflict() -> None:
    changed = {**BASE, "email_address": "same@example.com"}
    result = three_way_merge(BASE, changed, changed)
    assert result.changed == () and result.drift == () and result.conflicts == ()


def test_flatten_round_trips() -> None:
    assert unflatten(flatten(BASE)) == BASE
    assert flatten({"a": {"b": None, "c": "1"}, "d": None}) == {"a.c": "1"}


PATHS = ["email", "billing.city", "billing.first_name", "shipping.city", "tax.identifier"]
VALUE = st.none() | st.sampled_from(["x", "y", "z"])
FLAT = st.fixed_dictionaries({p: VALUE for p in PATHS})


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    return unflatten({k: v for k, v in flat.items() if v is not None})


@settings(max_examples=300)
@given(FLAT, FLAT, FLAT)
def test_a_remote_only_edit_survives_unless_the_source_changed_that_field(
    base: dict[str, Any], source: dict[str, Any], remote: dict[str, Any]
) -> None:
    result = three_way_merge(_nested(base), _nested(source), _nested(remote))
    merged = flatten(result.merged)
    for path in PATHS:
        if source[path] == base[path]:
            assert merged.get(path) == remote[path], path  # remote value kept, edit or not
            assert (path in result.drift) == (remote[path] != base[path])
        else:
            assert merged.get(path) == source[path], path
            assert (path in result.conflicts) == (remote[path] not in (base[path], source[path]))
    assert set(result.changed) == {p for p in PATHS if merged.get(p) != remote[p]}
