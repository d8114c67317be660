"""The field-level changes `custsync report --plan` shows for an update (old → new)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from transforms.changes import describe_change, field_changes
from transforms.merge import flatten

_VALUE = st.none() | st.text(max_size=3)
_PAYLOAD = st.dictionaries(
    st.sampled_from(["email", "phone", "name"]),
    _VALUE | st.dictionaries(st.sampled_from(["city", "line_1"]), _VALUE, max_size=2),
    max_size=3,
)


@given(old=_PAYLOAD, new=_PAYLOAD)
def test_the_changes_take_the_old_payload_to_the_new_one(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    changes = field_changes(old, new)
    rebuilt = flatten(old)
    for change in changes:
        assert rebuilt.get(change["field"]) == change["old"] != change["new"]
        if change["new"] is None:
            rebuilt.pop(change["field"], None)
        else:
            rebuilt[change["field"]] = change["new"]
    assert rebuilt == flatten(new)
    assert [c["field"] for c in changes] == sorted({c["field"] for c in changes})


def test_a_change_reads_old_arrow_new() -> None:
    (change,) = field_changes({"address": {"city": "Berlin"}}, {"address": {"city": "Bonn"}})
    assert describe_change(change) == "address.city: Berlin → Bonn"
    (added,) = field_changes(None, {"email": "a@x.io"})
    assert describe_change(added) == "email: ∅ → a@x.io"
