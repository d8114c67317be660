"""The report as one HTML document: plotly.js, style, data and script all inline.

Values reach the page two ways, both safe for text a customer controls: table cells are
``html.escape``d here, and the JSON the script reads sits in ``<script type="application/json">``
elements with ``<``, ``>`` and ``&`` escaped as ``\\u003c``-style sequences (so no value can
close the element), and is written into the page with ``textContent``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from pipelines.htmlreport.assets import CSS, SCRIPT
from pipelines.htmlreport.charts import Chart


@dataclass(frozen=True)
class Column:
    """A table column: its heading, and whether it holds numbers (right-aligned)."""

    name: str
    numeric: bool = False
    wrap: bool = False
    """Long text (a message): wraps, where other cells keep to one line."""


@dataclass(frozen=True)
class Table:
    """A table of the page, cells as plain values (escaped when rendered)."""

    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    row_classes: Sequence[str] | None = None


@dataclass(frozen=True)
class PageContent:
    """Everything the page shows."""

    title: str
    meta: str
    tiles: Sequence[tuple[str, Any]]
    runs: Table
    charts: Sequence[Chart]
    records: Table
    records_note: str
    customer_data: dict[str, Any]
    default_customer: str


def text(value: Any) -> str:
    """A cell's text: empty for NULL, lists joined, times to the second in UTC."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def json_script(element_id: str, value: Any) -> str:
    """``value`` as JSON in a script element the browser never runs, safe to embed."""
    body = json.dumps(value, ensure_ascii=False, default=text, separators=(",", ":"))
    for char, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        body = body.replace(char, safe)
    return f'<script type="application/json" id="{escape(element_id)}">{body}</script>'


def _cell(column: Column, value: Any) -> str:
    cls = ' class="num"' if column.numeric else ' class="wrap"' if column.wrap else ""
    # A key opens its drill-down; a run id filters the records to that run.
    target = {"external_id": "customer", "run_id": "filter"}.get(column.name)
    if target and value is not None:
        link = escape(f"#{target}={quote(str(value), safe='')}")
        return f'<td><a href="{link}">{escape(text(value))}</a></td>'
    return f"<td{cls}>{escape(text(value))}</td>"


def render_table(table: Table, body_id: str | None = None) -> str:
    """A table element; every cell escaped."""
    head = "".join(f"<th>{escape(c.name)}</th>" for c in table.columns)
    body_attr = f' id="{body_id}"' if body_id else ""
    rows = []
    for i, row in enumerate(table.rows):
        cls = table.row_classes[i] if table.row_classes else ""
        cells = "".join(_cell(c, v) for c, v in zip(table.columns, row, strict=True))
        rows.append(f'<tr class="{escape(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody{body_attr}>{''.join(rows)}</tbody></table>"


def _chart(chart: Chart, index: int) -> str:
    wide = ' class="wide"' if index == 0 else ""
    return (
        f"<figure{wide}><h2>{escape(chart.title)}</h2>"
        f'<p class="caption">{escape(chart.caption)}</p>'
        f'<div class="plot" id="chart-{chart.key}" data-key="{chart.key}"></div>'
        f"{json_script(f'fig-{chart.key}', chart.figure)}</figure>"
    )


def _options(keys: Iterable[str]) -> str:
    return "".join(f'<option value="{escape(k)}">' for k in keys)


def render_page(content: PageContent, plotly_js: str) -> str:
    """The whole document."""
    tiles = "".join(
        f'<div class="tile">{escape(label)}<b>{escape(text(value))}</b></div>'
        for label, value in content.tiles
    )
    charts = "".join(_chart(c, i) for i, c in enumerate(content.charts))
    keys = sorted(content.customer_data["records"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(content.title)}</title>
<style>{CSS}</style>
<script>{plotly_js}</script>
</head><body>
<header><h1>{escape(content.title)}</h1><p class="meta">{escape(content.meta)}</p>
<nav><a href="#runs">Runs</a><a href="#charts">Charts</a><a href="#records">Failed and
rejected records</a><a href="#customer">Customer drill-down</a></nav></header>
<div class="tiles">{tiles}</div>
<section id="charts" class="grid">{charts}</section>
<section id="runs"><h2>Runs</h2><p class="caption">Newest first. Failures and rejects per run
are in the table below; every figure is a view of the state file (v_runs, v_call_latency).</p>
<div class="scroll">{render_table(content.runs, "runs-body")}</div></section>
<section id="records"><h2>Failed and rejected records</h2>
<p class="caption">Failed and ambiguous actions, and validation rejects (values masked as the
state file holds them). {escape(content.records_note)}</p>
<p><input type="search" id="records-filter" placeholder="filter: key, run, code, rule, message"
 aria-label="filter the records"> <span id="records-shown" class="note"></span></p>
<div class="scroll">{render_table(content.records, "records-body")}</div></section>
<section id="customer"><h2>Customer drill-down</h2>
<p><input type="search" id="customer-input" list="customer-ids" aria-label="external id"
 placeholder="external id" data-default="{escape(content.default_customer)}"></p>
<datalist id="customer-ids">{_options(keys)}</datalist>
<div id="customer-view"></div></section>
{json_script("customer-data", content.customer_data)}
<script>{SCRIPT}</script>
</body></html>
"""
