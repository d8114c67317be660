"""The HTML report built in-process: escaping of any text, the figures against the state
file's counts, the record limit, files older than the changes table, the command's errors and
its import cost. The browser's view of it: ``tests/e2e/test_report_html.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.htmlreport import build_html, write_html
from pipelines.htmlreport.page import Column, Table, json_script, render_table
from pipelines.state import StateStore, calls_frame, outcomes_frame, snapshot_frame
from pipelines.state.store import migrations
from tests.e2e.browser import Element, parse

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
NO_JS = "/* plotly.js left out: these tests read the HTML, they do not run it */"
# Any text but lone surrogates, which no DuckDB (UTF-8) string can hold, mixed with pieces of
# markup (random characters alone seldom spell a tag).
MARKUP = ("<", ">", "&", '"', "'", "/", "=", "<b>", "</td>", "</script>", "<script>", "<img src=x",
          " onerror=alert(1)>", "&amp;", "&lt;", "<!--", "-->", "\u2028")  # fmt: skip
TEXT = st.lists(
    st.sampled_from(MARKUP) | st.text(st.characters(exclude_categories=("Cs",)), max_size=5),
    max_size=8,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(value=TEXT, key=TEXT)
def test_any_text_renders_as_that_text_and_nothing_else(value: str, key: str) -> None:
    columns = (Column("external_id"), Column("message", wrap=True), Column("n", numeric=True))
    html = render_table(Table(columns, [[key, value, 3]]), "body")
    # html.parser folds a lone CR as a browser does; compare what a reader sees.
    page = parse(html)
    ((cell_key, cell_value, cell_n),) = page.by_id("body").rows()
    assert (cell_key, cell_value, cell_n) == (key, value, "3")
    # The key's link opens its drill-down: the page reads it back as URLSearchParams does.
    (link,) = page.find_all("a")
    assert parse_qs(link.attrs["href"][1:], keep_blank_values=True) == {"customer": [key]}
    tags = sorted(e.tag for e in page.iter()[1:])
    assert tags == sorted(["table", "thead", "tr", "th", "th", "th", "tbody", "tr", "td", "td",
                           "td", "a"])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(TEXT | st.integers() | st.none(), lambda inner: st.lists(inner)
                          | st.dictionaries(TEXT, inner), max_leaves=8))  # fmt: skip
def test_embedded_json_reads_back_and_cannot_close_its_element(value: Any) -> None:
    html = json_script("data", {"v": value})
    assert html.count("</") == 1  # only its own end tag: no value can end the element early
    (script,) = parse(html).find_all("script")
    assert json.loads(script.text()) == {"v": value}


def _outcome(key: str, action: str, result: str, **extra: Any) -> dict[str, Any]:
    return {
        "plan_id": f"p-{key}-{action}",
        "external_id": key,
        "action": action,
        "result": result,
        "remote_id": f"r-{key}",
        "changed_fields": [],
        "drift_fields": [],
        "at": T0,
        **extra,
    }


def _call(status: int, latency: float) -> dict[str, Any]:
    return {
        "operation": "createCustomer",
        "method": "POST",
        "path_template": "/v0.1/customers",
        "status": status,
        "attempt": 1,
        "latency_ms": latency,
        "started_at": T0,
    }


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """Three sumup runs: creates and a failure; an update with drift and rejects; a dry run."""
    path = tmp_path / "state.duckdb"
    with StateStore(path) as store:
        for n, (outcomes, rejected, calls) in enumerate(
            [
                (
                    [
                        _outcome("A", "create", "succeeded"),
                        _outcome("B", "create", "adopted"),
                        _outcome("C", "create", "failed", error_code="INVALID", http_status=400),
                        _outcome("D", "create", "ambiguous", error_class="ReadTimeout"),
                    ],
                    [],
                    [_call(201, 10.0), _call(429, 2.0), _call(201, 30.0), _call(400, 5.0)],
                ),
                (
                    [
                        _outcome(
                            "A",
                            "update",
                            "succeeded",
                            changed_fields=["personal_details.email"],
                            drift_fields=["personal_details.phone"],
                        )
                    ],
                    [("E", "email", "email"), ("E", "phone", "phone"), ("F", "email", "email")],
                    [_call(200, 4.0)],
                ),
                ([], [], []),
            ]
        ):
            run_id = store.begin_run(
                flow="sync", target="sumup", mode="mirror", dry_run=n == 2,
                extract_paths=["x.csv"], params={},
            )  # fmt: skip
            store.con.execute(
                "UPDATE runs SET started_at = ? WHERE run_id = ?", [T0 + timedelta(hours=n), run_id]
            )
            if rejected:
                frame = pl.DataFrame(
                    [
                        {"external_id": k, "field": f, "rule": r, "message": "bad", "value": "x***"}
                        for k, f, r in rejected
                    ]
                )
                store.write_rejects(run_id, "sumup", frame)
            store.record_batch(
                run_id, "sumup", calls=calls_frame(calls), outcomes=outcomes_frame(outcomes),
                snapshot_upserts=snapshot_frame([]), snapshot_deletes=[],
            )  # fmt: skip
            store.finish_run(run_id, status="done", exit_code=1 if n < 2 else 0, summary={})
    yield path


def _figure(page: Element, key: str) -> dict[str, int]:
    """Each bar series' sum, from the figure JSON the page embeds for ``key``."""
    (script,) = [s for s in page.find_all("script") if s.attrs.get("id") == f"fig-{key}"]
    figure = json.loads(script.text())
    return {t["name"]: sum(t["y"]) for t in figure["data"] if t["type"] == "bar"}


def _build(path: Path, **limits: Any) -> tuple[Element, Any]:
    with duckdb.connect(str(path), read_only=True) as con:
        document, facts = build_html(con, last=10, source=str(path), plotly_js=NO_JS, **limits)
    return parse(document), facts


def test_the_page_holds_the_runs_figures_and_records(state: Path) -> None:
    page, facts = _build(state)
    assert (facts.runs, facts.records, facts.records_total) == (3, 5, 5)
    assert len(page.by_id("runs-body").rows()) == 3
    assert _figure(page, "outcomes") == {"create": 2, "update": 1, "failed": 2}
    assert _figure(page, "rejects") == {"email": 2, "phone": 1}
    assert _figure(page, "failures") == {"INVALID": 1, "ReadTimeout": 1}
    assert _figure(page, "drift") == {"personal_details.phone": 1}
    assert _figure(page, "latency") == {"HTTP 429": 1}
    records = page.by_id("records-body").rows()
    assert sorted((r[3], r[4]) for r in records) == [
        ("C", "failed"), ("D", "ambiguous"), ("E", "rejected"), ("E", "rejected"),
        ("F", "rejected"),
    ]  # fmt: skip
    (data,) = [s for s in page.find_all("script") if s.attrs.get("id") == "customer-data"]
    customers = json.loads(data.text())["records"]
    assert sorted(customers) == ["A", "B", "C", "D", "E", "F"]
    assert len(customers["A"]["history"]) == 2
    # The drill-down opens on the key with the most to show: A's update drifted.
    assert page.by_id("customer-input").attrs["data-default"] == "A"


def test_records_past_the_limit_are_counted_and_one_run_can_be_chosen(state: Path) -> None:
    page, facts = _build(state, records_limit=2)
    assert (facts.records, facts.records_total) == (2, 5)
    assert len(page.by_id("records-body").rows()) == 2
    assert "Showing the first 2 of 5" in page.by_id("records").text()
    with duckdb.connect(str(state), read_only=True) as con:
        first = con.execute("SELECT min(run_id) FROM runs").fetchall()[0][0]
        _, facts = build_html(con, last=10, run_id=first, source="s", plotly_js=NO_JS)
    assert (facts.runs, facts.records_total) == (1, 2)


def test_a_file_older_than_the_changes_table_still_reports(tmp_path: Path) -> None:
    path = tmp_path / "v6.duckdb"
    older = [m for m in migrations() if m.version <= 6]
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                    " name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")  # fmt: skip
        for m in older:
            con.execute(m.path.read_text(encoding="utf-8"))
            con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [m.version, m.name])
        con.execute(
            "INSERT INTO runs (run_id, flow, target, mode, dry_run, extract_paths, params,"
            " started_at, status) VALUES ('r1', 'sync', 'sumup', 'mirror', false, ['x.csv'],"
            " '{}', now(), 'done')"
        )
        con.execute(
            "INSERT INTO rejects (run_id, target, external_id, field, rule, message, rejected_at)"
            " VALUES ('r1', 'sumup', 'K', 'email', 'email', 'bad', now())"
        )
    page, facts = _build(path)
    assert (facts.runs, facts.records_total, facts.customers) == (1, 1, 1)
    (data,) = [s for s in page.find_all("script") if s.attrs.get("id") == "customer-data"]
    assert "older than migration 007" in json.loads(data.text())["changes_note"]


def test_the_file_is_written_whole(tmp_path: Path, state: Path) -> None:
    with duckdb.connect(str(state), read_only=True) as con:
        document, facts = build_html(con, last=5, source="s", plotly_js=NO_JS)
    out = tmp_path / "reports" / "r.html"
    written = write_html(out, document, facts)
    assert written.bytes == out.stat().st_size == len(document.encode())
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary file left


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "report", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_bad_html_requests_are_exit_2_with_one_error_line(state: Path, tmp_path: Path) -> None:
    for args, says in (
        (["--html", str(tmp_path / "r.html"), "--plan", "--run", "x"], "--html writes"),
        (["--html", str(tmp_path / "r.html"), "--run", "nope"], "no run 'nope'"),
        (["--html", str(state / "r.html")], "cannot write"),  # a file is no directory
    ):
        done = _cli(*args, "--state", str(state))
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("error:") and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    done = _cli("--html", str(tmp_path / "r.html"), "--state", str(state))
    assert done.returncode == 0 and "3 run(s), 5 failed or rejected" in done.stdout


def test_the_table_report_never_imports_plotly(state: Path) -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('PLOTLY', 'plotly' in sys.modules))\n"
        "from pipelines.cli import main\n"
        f"sys.argv = ['custsync', 'report', '--state', {str(state)!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "PLOTLY False" in done.stdout


def test_chart_labels_from_providers_are_drawn_as_text() -> None:
    """plotly.js reads <b>, <br> and <a href> in labels: a provider's error code is escaped."""
    from pipelines.htmlreport.charts import failures_chart

    runs = pl.DataFrame({"run_id": ["r1"], "started_at": [T0], "target": ["<i>t</i>"]})
    code = '<a href="javascript:alert(1)">E&F</a>'
    chart = failures_chart(runs, pl.DataFrame({"run_id": ["r1"], "code": [code], "n": [2]}))
    (trace,) = chart.figure["data"]
    assert trace["name"] == '&lt;a href="javascript:alert(1)"&gt;E&amp;F&lt;/a&gt;'
    assert trace["x"] == ["2026-11-22 06:00:00 &lt;i&gt;t&lt;/i&gt;"] and trace["y"] == [2]


def test_a_state_file_without_runs_reports_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    StateStore(path).close()
    page, facts = _build(path)
    assert (facts.runs, facts.records_total, facts.customers) == (0, 0, 0)
    assert "no runs yet" in page.find_all("header")[0].text()
    assert all(_figure(page, key) == {} for key in ("outcomes", "rejects", "failures", "drift"))
