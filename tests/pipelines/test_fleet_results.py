"""The fleet's results artifact: ``custsync fleet`` reads back the same summary (totals, exit
code, every row) the fleet flow computed, whatever its runs' outcomes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from pipelines.flows.fleet import TenantResult, fleet_summary, result_rows, summary_of_rows

OUTCOMES = [("ok", 0, "Completed"), ("rejects", 1, "CompletedWithRejects")] + [
    ("failed", code, "Failed") for code in (2, 3, 4, 70)
]

counts = st.fixed_dictionaries(
    {k: st.integers(0, 10**6) for k in ("planned", "succeeded", "failed", "unchanged", "rejected")}
)


@st.composite
def results(draw: st.DrawFn) -> TenantResult:
    result, code, state = draw(st.sampled_from(OUTCOMES))
    return TenantResult(
        tenant=draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)),
        target=draw(st.sampled_from(["sumup", "verifone"])),
        result=result,
        exit_code=code,
        state=state,
        message=draw(st.text(max_size=30)),
        duration_s=draw(st.floats(0, 1e5, allow_nan=False)),
        flow_run_id=draw(st.none() | st.uuids().map(str)),
        counts=draw(st.just({}) | counts),  # a run that never started has no counts
    )


@given(st.lists(results(), max_size=12), st.floats(0, 1e5, allow_nan=False))
def test_the_summary_survives_the_artifact(runs: list[TenantResult], duration: float) -> None:
    summary = fleet_summary(runs, duration)
    through_json = json.loads(json.dumps(result_rows(summary)))
    assert summary_of_rows(through_json, duration) == summary
    assert summary["exit_code"] == max((r.exit_code for r in runs), default=0)
