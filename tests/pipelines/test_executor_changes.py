"""The executor's change rows: every field a succeeded action changed, before and after."""

from __future__ import annotations

from typing import Any

from connectors.errors import RecordRejected
from pipelines.batch import BatchResult, ExecutionOptions
from pipelines.executor import BatchExecutor
from tests.pipelines.test_executor import FakeVerifone, person, row, run

COLUMNS = ("external_id", "action", "field", "before", "after", "why")


def _changes(result: BatchResult) -> list[tuple[Any, ...]]:
    return result.changes.frame().select(COLUMNS).rows()


def test_a_create_records_every_field_sent_from_nothing_at_its_outcome_time() -> None:
    fake = FakeVerifone()
    result = run(BatchExecutor(fake, run_id="run"), [row("create", "A", person("a@x.io"))])
    assert _changes(result) == [
        ("A", "create", "company_name", None, "Acme", "source"),
        ("A", "create", "email_address", None, "a@x.io", "source"),
        ("A", "create", "entity_id", None, "e", "source"),
    ]
    frame = result.changes.frame()
    (outcome,) = result.outcomes
    assert set(frame["occurred_at"]) == {outcome["at"]}
    assert set(frame["remote_id"]) == {outcome["remote_id"]} == {"id-0"}
    assert set(frame["plan_id"]) == {"create-A"}


def test_an_update_records_the_remote_value_before_and_why() -> None:
    fake = FakeVerifone()
    base = person("a@x.io", phone_number="1", work_phone="5")
    # edited outside custsync: work_phone (the source leaves it: kept), phone_number (the
    # source changes it too: overwritten)
    fake.records["r1"] = {"id": "r1", **base, "work_phone": "9", "phone_number": "portal"}
    source = person("new@x.io", phone_number="2", work_phone="5")
    result = run(
        BatchExecutor(fake, run_id="run"), [row("update", "A", source, remote_id="r1", base=base)]
    )
    assert _changes(result) == [
        ("A", "update", "email_address", "a@x.io", "new@x.io", "source"),
        ("A", "update", "phone_number", "portal", "2", "drift"),
        ("A", "update", "work_phone", "9", "9", "remote_kept"),
    ]
    assert fake.records["r1"]["work_phone"] == "9"
    assert result.outcomes[0]["changed_fields"] == ["email_address", "phone_number"]


def test_an_update_in_step_records_nothing_but_a_kept_edit() -> None:
    fake = FakeVerifone()
    payload = person("a@x.io")
    fake.records["r1"] = {"id": "r1", **payload, "work_phone": "9"}
    result = run(
        BatchExecutor(fake, run_id="run"),
        [row("update", "A", payload, remote_id="r1", base=payload)],
    )
    assert [op for op, _ in fake.calls] == ["fetch_many"]  # nothing sent
    assert _changes(result) == [("A", "update", "work_phone", "9", "9", "remote_kept")]


def test_a_delete_and_a_close_keep_the_last_payload() -> None:
    fake = FakeVerifone()
    fake.records = {"r1": {"id": "r1"}, "r2": {"id": "r2"}}
    last = person("a@x.io", billing={"city": "Leeds"})
    result = run(
        BatchExecutor(fake, run_id="run"),
        [
            row("delete", "A", remote_id="r1", base=last),
            row("close", "B", person("b@x.io"), remote_id="r2", base=person("b0@x.io")),
        ],
    )
    assert sorted(_changes(result)) == [
        ("A", "delete", "billing.city", "Leeds", None, "source"),
        ("A", "delete", "company_name", "Acme", None, "source"),
        ("A", "delete", "email_address", "a@x.io", None, "source"),
        ("A", "delete", "entity_id", "e", None, "source"),
        ("B", "close", "company_name", "Acme", None, "source"),
        ("B", "close", "email_address", "b0@x.io", None, "source"),  # the base: what it held
        ("B", "close", "entity_id", "e", None, "source"),
    ]


def test_a_failed_action_records_no_change() -> None:
    fake = FakeVerifone()
    fake.fail["bad@x.io"] = RecordRejected("no", provider="verifone", operation="c", status=400)
    result = run(BatchExecutor(fake, run_id="run"), [row("create", "A", person("bad@x.io"))])
    assert result.outcomes[0]["result"] == "failed"
    assert result.changes.frame().height == 0


def test_an_adopted_customer_records_what_converging_changed() -> None:
    fake = FakeVerifone()
    fake.records["old"] = {"id": "old", **person("a@x.io", work_phone="7", phone_number="1")}
    executor = BatchExecutor(
        fake, run_id="run", options=ExecutionOptions(adopt_by=("email_address",))
    )
    result = run(executor, [row("create", "A", person("a@x.io", phone_number="5"))])
    assert result.outcomes[0]["result"] == "adopted"
    assert _changes(result) == [("A", "create", "phone_number", "1", "5", "source")]
    assert result.changes.frame()["remote_id"].to_list() == ["old"]
