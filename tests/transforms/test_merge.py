from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.merge import (
    FieldChange,
    create_changes,
    flatten,
    remove_changes,
    three_way_merge,
    unflatten,
)

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


# -- change rows: the ``changes`` table ------------------------------------------------------


def test_a_portal_edit_kept_and_one_overwritten_keep_the_remote_value() -> None:
    source = {**BASE, "email_address": "new@example.com", "billing": {**BASE["billing"]}}
    source["billing"]["city"] = "York"
    remote = {**BASE, "phone_number": "+44 20 1", "billing": {**BASE["billing"], "city": "Leeds"}}
    result = three_way_merge(BASE, source, remote)
    assert result.changes == (
        FieldChange("billing.city", "Leeds", "York", "drift"),  # the portal edit, overwritten
        FieldChange("email_address", "old@example.com", "new@example.com", "source"),
        FieldChange("phone_number", "+44 20 1", "+44 20 1", "remote_kept"),  # kept
    )


def test_a_create_changes_every_field_from_nothing_and_a_delete_to_nothing() -> None:
    payload = {"b": {"y": 2, "x": "1"}, "a": True, "gone": None}
    assert create_changes(payload) == (
        FieldChange("a", None, True, "source"),
        FieldChange("b.x", None, "1", "source"),
        FieldChange("b.y", None, 2, "source"),
    )
    assert remove_changes(payload) == tuple(
        FieldChange(c.field, c.after, None, "source") for c in create_changes(payload)
    )


def _reference_changes(
    base: dict[str, Any] | None, source: dict[str, Any], remote: dict[str, Any]
) -> list[tuple[str, Any, Any, str]]:
    """The rule of issue 11, field by field over flat payloads (``None``: absent): a field
    the update changes is a row from the remote value to the sent one, ``drift`` when the
    provider had been edited (remote differs from base), else ``source``; a field the source
    left alone whose remote differs from base is kept, a ``remote_kept`` row."""
    rows = []
    for path in sorted(set(source) | set(remote) | set(base or {})):
        s, r = source.get(path), remote.get(path)
        if base is None:
            sent = s if s is not None else r
            if sent != r:
                rows.append((path, r, sent, "source"))
            continue
        b = base.get(path)
        if s == b:
            if r != b:
                rows.append((path, r, r, "remote_kept"))
        elif s != r:
            rows.append((path, r, s, "drift" if r != b else "source"))
    return rows


ANY_VALUE = st.none() | st.sampled_from(["x", "y", "z"]) | st.integers(0, 2) | st.booleans()
ANY_FLAT = st.fixed_dictionaries({p: ANY_VALUE for p in PATHS})


@settings(max_examples=400)
@given(st.none() | ANY_FLAT, ANY_FLAT, ANY_FLAT)
def test_change_rows_follow_the_reference_rule(
    base: dict[str, Any] | None, source: dict[str, Any], remote: dict[str, Any]
) -> None:
    result = three_way_merge(
        None if base is None else _nested(base), _nested(source), _nested(remote)
    )
    flat = {k: v for k, v in (base or {}).items() if v is not None}
    expected = _reference_changes(
        None if base is None else flat,
        {k: v for k, v in source.items() if v is not None},
        {k: v for k, v in remote.items() if v is not None},
    )
    assert [tuple(c) for c in result.changes] == expected
    # the rows agree with the outcome's field lists
    assert tuple(c.field for c in result.changes if c.why != "remote_kept") == result.changed
    assert tuple(c.field for c in result.changes if c.why == "remote_kept") == result.drift
    assert tuple(c.field for c in result.changes if c.why == "drift") == result.conflicts
    sent = flatten(result.merged)
    assert all(sent.get(c.field) == c.after for c in result.changes)
