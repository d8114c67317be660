"""``custsync report --html`` looked at as a person would: opened in headless Chromium, a
screenshot that is not blank, and the page's figures, records and drill-down read back
through the DOM and compared with the state file's own counts (SQL written here, not the
report's)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import duckdb
import polars as pl
import pytest

from connectors.sandbox.server import SandboxServer
from pipelines.commands.demo import _edit_outside_custsync
from tests.e2e.browser import Element, dump_dom, png_distinct_rows, screenshot
from tests.e2e.conftest import CREDENTIALS, DAY1, DAY2
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e

IMG = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT = "<script>document.title='pwned'</script>"
EVIL_KEY = f"CRM-{IMG}"
"""A key that validates (keys have no pattern) and carries markup."""
REJECTED_KEY = f"CRM-9{SCRIPT}"
"""A key whose row is rejected (bad e-mail): it is listed among the records."""
CHARTS = ("outcomes", "rejects", "failures", "latency", "drift")


def _day1_with_markup(tmp_path: Path) -> Path:
    """The sample day 1 with markup in a name and in two keys, one row rejected."""
    rows = pl.read_csv(DAY1, infer_schema=False)
    first = rows.head(1).with_columns(
        pl.lit(EVIL_KEY).alias("external_id"), pl.lit(f"Ann {SCRIPT}").alias("first_name")
    )
    rejected = rows.head(1).with_columns(
        pl.lit(REJECTED_KEY).alias("external_id"), pl.lit(f"{IMG}@x").alias("email")
    )
    path = tmp_path / "day1.csv"
    pl.concat([rows, first, rejected]).write_csv(path)
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    return pl.read_csv(path, infer_schema=False).to_dicts()


def _sql(state: str, query: str) -> list[tuple]:  # type: ignore[type-arg]
    with duckdb.connect(state, read_only=True) as con:
        return con.execute(query).fetchall()


def _totals(page: Element, key: str) -> dict[str, int]:
    chart = page.by_id(f"chart-{key}")
    assert chart.find_all("svg", "main-svg"), f"chart {key} was not drawn"
    return {k: int(v) for k, v in json.loads(chart.attrs["data-totals"]).items()}


def _counts(state: str, query: str) -> dict[str, int]:
    return {str(k): int(n) for k, n in _sql(state, query)}


@pytest.fixture(scope="module")
def report(
    sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, dict[str, str]]:
    """A state file of five real runs against the sandbox, with creates, updates, closures,
    rejects, provider errors, 429s and a portal edit (drift); and its HTML report. Built once
    for the module: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("html-report")
    sandbox.admin.reset(config=True)
    state = str(tmp_path / "state.duckdb")
    env = {
        **CREDENTIALS,
        "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
        "CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url,
        "CUSTSYNC_STATE": state,
        "CUSTSYNC_CONFIG": str(tmp_path / "absent.toml"),
        "CUSTSYNC_MAX_REJECT_FRACTION": "1",
    }
    day1 = _day1_with_markup(tmp_path)
    # custsync sends at 200/s to a provider allowing 40/s: some calls are answered 429.
    sandbox.admin.configure(rate_limit=40, burst=2)
    fast = {**env, "CUSTSYNC_RATE_LIMIT": "200"}
    assert run_cli("sync", str(day1), "-t", "sumup", env=fast).returncode == 1  # the reject
    # Failures with codes: the provider answers 5xx, and custsync tries each call once.
    sandbox.admin.configure(rate_limit=None, fault_rate=0.3, fault_kinds=["500", "503"], seed=11)
    first_try = run_cli(
        "sync", str(DAY1), "-t", "verifone", env={**env, "CUSTSYNC_MAX_ATTEMPTS": "1"}
    )
    sandbox.admin.configure(fault_rate=0.0)
    assert first_try.returncode == 1, first_try.stderr
    assert run_cli("sync", str(DAY1), "-t", "verifone", env=env).returncode == 0
    # Someone edits a customer in Verifone's portal (the demo's edit): day 2 finds drift.
    edited = _edit_outside_custsync(sandbox.base_url, Path(state), _rows(DAY1), _rows(DAY2))
    assert edited == "CRM-00002"
    for target in ("verifone", "sumup"):
        day2 = run_cli("sync", str(DAY2), "-t", target, "--mode", "mirror", env=env)
        assert day2.returncode == 1, day2.stderr
    html = tmp_path / "out" / "report.html"
    done = run_cli("report", "--html", str(html), "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"] == 5
    return html, state, env


def test_the_report_shows_what_the_state_file_holds(
    report: tuple[Path, str, dict[str, str]], tmp_path: Path
) -> None:
    html, state, _ = report
    url = html.resolve().as_uri()
    distinct, height = png_distinct_rows(screenshot(url, tmp_path / "report.png"))
    assert distinct > height // 10, f"a blank-looking screenshot: {distinct} of {height} rows"
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert png_distinct_rows(screenshot(blank.as_uri(), tmp_path / "blank.png"))[0] <= 3

    page = dump_dom(url)
    body = page.find_all("body")[0]
    assert body.attrs.get("data-ready") == "true"
    assert page.find_all("title")[0].text() == "custsync report"  # no script ran

    done = "result IN ('succeeded', 'adopted')"
    outcomes = _counts(state, f"SELECT action, count(*) FROM outcomes WHERE {done} GROUP BY 1")
    outcomes |= _counts(
        state,
        "SELECT CASE WHEN result = 'skipped' THEN 'skipped' ELSE 'failed' END, count(*)"
        f" FROM outcomes WHERE NOT {done} GROUP BY 1",
    )
    assert _totals(page, "outcomes") == outcomes
    assert outcomes["failed"] > 0 and outcomes["update"] > 0 and outcomes["close"] > 0
    assert _totals(page, "rejects") == _counts(
        state, "SELECT rule, count(*) FROM rejects GROUP BY 1"
    )
    failures = _counts(
        state,
        "SELECT coalesce(error_code, error_class, 'unknown'), count(*) FROM outcomes"
        " WHERE result IN ('failed', 'ambiguous') GROUP BY 1",
    )
    assert _totals(page, "failures") == failures and failures
    ((http_429,),) = _sql(state, "SELECT count(*) FROM calls WHERE status = 429")
    assert _totals(page, "latency") == {"HTTP 429": http_429} and http_429 > 0
    drift = _counts(state, "SELECT field, count(*) FROM v_drift GROUP BY 1")
    assert _totals(page, "drift") == drift == {"work_phone": 1}

    ((failed_or_rejected,),) = _sql(
        state,
        "SELECT (SELECT count(*) FROM outcomes WHERE result IN ('failed', 'ambiguous'))"
        " + (SELECT count(*) FROM rejects)",
    )
    records = page.by_id("records-body").rows()
    assert len(records) == failed_or_rejected
    # Markup in a key is text: the cell reads exactly the key, and no element was injected.
    assert any(row[3] == REJECTED_KEY for row in records)
    assert not page.find_all("img") and len(page.find_all("script")) == 2 + len(CHARTS) + 1


def test_the_records_filter_and_the_customer_drill_down(
    report: tuple[Path, str, dict[str, str]],
) -> None:
    html, state, _ = report
    url = html.resolve().as_uri()
    filtered = dump_dom(f"{url}#filter=CRM-00024")
    shown = [r for r in filtered.by_id("records-body").find_all("tr") if "hidden" not in r.attrs]
    ((expected,),) = _sql(
        state,
        "SELECT count(*) FROM v_failures WHERE external_id = 'CRM-00024'",
    )
    assert len(shown) == expected > 0
    assert filtered.by_id("records-shown").attrs["data-shown"] == str(expected)
    # A run's id in the runs table links to its records.
    ((run_id, in_run),) = _sql(
        state, "SELECT run_id, count(*) FROM v_failures GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    )
    (link,) = [a for a in filtered.by_id("runs-body").find_all("a") if a.text() == run_id]
    by_run = dump_dom(url + link.attrs["href"])
    assert by_run.by_id("records-shown").attrs["data-shown"] == str(in_run)

    # CRM-00002's street changed on day 2: the update shows the street before and after.
    page = dump_dom(f"{url}#customer=CRM-00002")
    view = page.by_id("customer-view")
    assert view.attrs["data-key"] == "CRM-00002"
    changes = view.find_all("tbody", "customer-changes")[0].rows()
    stored = _sql(
        state,
        "SELECT target, action, field, coalesce(before, ''), coalesce(after, ''), why"
        " FROM v_changes WHERE external_id = 'CRM-00002' ORDER BY occurred_at, target, field",
    )
    assert [tuple(row[2:8]) for row in changes] == stored
    assert ("sumup", "update", "personal_details.address.line_1", "Lindenallee 3",
            "Lindenallee 5", "source") in stored  # fmt: skip
    # The portal edit was kept, and says so.
    assert ("verifone", "update", "work_phone", "+49 40 555 9999", "+49 40 555 9999",
            "remote_kept") in stored  # fmt: skip
    history = view.find_all("tbody", "customer-history")[0].rows()
    ((events,),) = _sql(
        state,
        "SELECT (SELECT count(*) FROM outcomes WHERE external_id = 'CRM-00002')"
        " + (SELECT count(*) FROM rejects WHERE external_id = 'CRM-00002')",
    )
    assert len(history) == events

    # A key with markup opens as text, its name's markup too, and nothing runs.
    evil = dump_dom(f"{url}#customer={quote(EVIL_KEY)}")
    view = evil.by_id("customer-view")
    assert view.attrs["data-key"] == EVIL_KEY and view.find_all("h3")[0].text() == EVIL_KEY
    afters = [row[6] for row in view.find_all("tbody", "customer-changes")[0].rows()]
    assert f"Ann {SCRIPT}" in afters
    assert not evil.find_all("img") and evil.find_all("title")[0].text() == "custsync report"


def test_the_audit_flow_writes_the_report_and_links_it(
    report: tuple[Path, str, dict[str, str]], prefect_harness: None
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from pipelines.flows.audit import audit_report_flow

    _, state, _ = report
    result = audit_report_flow(last_runs=10, state=state)
    html = Path(result["html"])
    # The default: reports/custsync-report-<stamp>.html beside the state file.
    assert html.parent == Path(state).parent / "reports" and html.name.endswith(".html")
    assert html.stat().st_size == result["bytes"] and result["runs"] == 5

    async def artifacts() -> dict[str, str]:
        keys = ["custsync-audit-html", "custsync-audit-runs", "custsync-audit-records"]
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
            )
        return {str(a.key): str(a.data) for a in found}

    published = asyncio.run(artifacts())
    assert html.resolve().as_uri() in published["custsync-audit-html"]
    runs = json.loads(published["custsync-audit-runs"])
    assert len(runs) == 5 and {r["target"] for r in runs} == {"sumup", "verifone"}
    records = json.loads(published["custsync-audit-records"])
    assert len(records) == result["records_total"] > 0
    assert any(r["external_id"] == REJECTED_KEY for r in records)
    assert "sandbox-token" not in json.dumps(published)
