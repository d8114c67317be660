from __future__ import annotations

import polars as pl

from connectors.providers.sumup import customer_id as sumup_customer_id
from pipelines.instruments import plan_deactivations
from transforms.diff import plan_id


def frame(*rows: tuple[str | None, str | None]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["external_id", "token"], orient="row")


def test_rows_become_deactivations_of_the_derived_customer() -> None:
    plan, rejects = plan_deactivations(frame(("A", "t1"), ("B", "t2")), "sumup", set())
    assert plan["action"].to_list() == ["deactivate", "deactivate"]
    assert plan["remote_id"].to_list() == [sumup_customer_id("A"), sumup_customer_id("B")]
    assert rejects.height == 0


def test_done_ones_are_left_out_and_bad_rows_rejected() -> None:
    done = {plan_id("sumup", "A", "deactivate", "t1")}
    plan, rejects = plan_deactivations(frame(("A", "t1"), ("B", None)), "sumup", done)
    assert plan.height == 0
    assert rejects.select("external_id", "rule").rows() == [("B", "required")]


def test_verifone_has_no_instruments() -> None:
    plan, rejects = plan_deactivations(frame(("A", "t1")), "verifone", set())
    assert plan.height == 0 and rejects["rule"].to_list() == ["unsupported"]
