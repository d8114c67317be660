from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

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


def test_an_instruments_glob_matching_nothing_means_nothing_to_deactivate(tmp_path: Path) -> None:
    from pipelines.extract import ExtractError, read_instruments

    none = read_instruments([str(tmp_path / "instruments-*.csv")])
    assert none.height == 0 and none.columns == ["external_id", "token"]
    with pytest.raises(ExtractError, match="no such file"):
        read_instruments([str(tmp_path / "instruments-today.csv")])  # a named file must exist
    (tmp_path / "instruments-1.csv").write_text("external_id,token\nA,t1\n")
    assert read_instruments([str(tmp_path / "instruments-*.csv")]).height == 1
