"""The report's charts: plotly.js figures, one run per x position, built from the tidy frames
of :class:`~pipelines.state.report_reads.ReportReads`.

A figure is the plain ``{"data": [...], "layout": {...}}`` plotly.js draws: building them with
plotly.py's validated ``graph_objects`` cost 0.6 s of a 1.0 s report here (its templates are
deep-copied per figure), for nothing the page needs.

Every chart plots the chosen runs in the same order (oldest first) on a category axis labelled
by start time and target, so the charts line up by run. A chart's traces add up to what the
state file counts: the page's test checks the sums drawn against SQL counts of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from transforms.actions import SUMMARY_ACTIONS

_ACTION_ORDER = tuple(a for a in SUMMARY_ACTIONS if a != "unchanged")
_DONE = ("succeeded", "adopted")
_TREND_WINDOW = 5
"""Runs averaged by the trend line."""


@dataclass(frozen=True)
class Chart:
    """One figure of the page: its element id, heading, and what it shows."""

    key: str
    title: str
    caption: str
    figure: dict[str, Any]
    """``data`` (the traces) and ``layout``, as plotly.js takes them."""


def plain(text: str) -> str:
    """``text`` as plotly.js shows it literally. plotly.js reads a subset of HTML in every
    label, legend and hover text (``<b>``, ``<br>``, ``<a href>``) and decodes entities; an
    error code or field name comes from a provider, so its ``<``, ``>`` and ``&`` become
    entities, which plotly.js draws as those characters (SVG text, never markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def run_labels(runs: pl.DataFrame) -> list[str]:
    """One distinct x label per run: its start (UTC) and target, numbered when two collide."""
    labels: list[str] = []
    seen: dict[str, int] = {}
    for started, target in runs.select("started_at", "target").iter_rows():
        base = f"{started:%Y-%m-%d %H:%M:%S} {target}"
        seen[base] = seen.get(base, 0) + 1
        labels.append(plain(base if seen[base] == 1 else f"{base} ({seen[base]})"))
    return labels


def _per_run(frame: pl.DataFrame, run_ids: Sequence[str], key: str) -> dict[str, list[int]]:
    """``{category: [count per run, in run order]}`` from a ``run_id, <key>, n`` frame."""
    index = {run_id: i for i, run_id in enumerate(run_ids)}
    series: dict[str, list[int]] = {}
    for run_id, category, n in frame.select("run_id", key, "n").iter_rows():
        series.setdefault(str(category), [0] * len(run_ids))[index[run_id]] += int(n)
    return dict(sorted(series.items()))


def _whole_ticks(values: Sequence[Any]) -> dict[str, Any]:
    """Axis settings for counts: whole-number ticks, one apart when the counts are small
    (plotly would label 0.2, 0.4, ... for a maximum of 1)."""
    top = max((v for v in values if v is not None), default=0)
    return {"tickformat": ",d", "dtick": 1} if top < 5 else {"tickformat": ",d"}


def _bar(x: list[str], y: Sequence[Any], name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "bar", "x": x, "y": list(y), "name": plain(name), **extra}


def _figure(
    traces: list[dict[str, Any]], y_title: str, *, empty: str | None, counts: bool = True
) -> dict[str, Any]:
    bars = [t["y"] for t in traces if t["type"] == "bar" and t.get("yaxis") is None]
    stacked = [sum(v or 0 for v in column) for column in zip(*bars, strict=True)]
    layout: dict[str, Any] = {
        "barmode": "stack",
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        "legend": {"orientation": "h", "y": 1.12},
        "xaxis": {"type": "category", "tickangle": -35, "automargin": True},
        "yaxis": {
            "title": {"text": y_title},
            "rangemode": "tozero",
            "gridcolor": "#e5e8ee",
            **(_whole_ticks(stacked) if counts else {}),
        },
        "font": {"family": "system-ui, sans-serif", "size": 12},
    }
    if empty:
        layout["annotations"] = [
            {"text": empty, "showarrow": False, "xref": "paper", "yref": "paper",
             "x": 0.5, "y": 0.5}
        ]  # fmt: skip
    return {"data": traces, "layout": layout}


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(round(sum(chunk) / len(chunk), 2))
    return out


def outcomes_chart(runs: pl.DataFrame, outcomes: pl.DataFrame) -> Chart:
    """Done outcomes per action, failed and skipped ones, stacked per run, with a trend."""
    run_ids, x = runs["run_id"].to_list(), run_labels(runs)
    labelled = outcomes.with_columns(
        pl.when(pl.col("result").is_in(_DONE))
        .then(pl.col("action"))
        .otherwise(pl.col("result").replace({"ambiguous": "failed"}))
        .alias("series")
    )
    series = _per_run(labelled, run_ids, "series")
    order = [*_ACTION_ORDER, *sorted(set(series) - {*_ACTION_ORDER, "failed", "skipped"})]
    traces = [_bar(x, series[name], name) for name in [*order, "skipped", "failed"]
              if name in series]  # fmt: skip
    totals = [sum(col) for col in zip(*series.values(), strict=True)] if series else []
    if totals:
        traces.append({
            "type": "scatter", "x": x, "y": _moving_average(totals, _TREND_WINDOW),
            "name": f"all outcomes, {_TREND_WINDOW}-run average", "mode": "lines",
            "line": {"dash": "dot", "color": "#333"},
        })  # fmt: skip
    return Chart(
        "outcomes",
        "Outcomes by action",
        "Records done per action (adopted creates counted as creates), skipped and failed "
        f"(ambiguous included), per run; the dotted line is the {_TREND_WINDOW}-run average.",
        _figure(traces, "records", empty=None if series else "no outcomes in these runs"),
    )


def _stacked(
    key: str, title: str, caption: str, runs: pl.DataFrame, frame: pl.DataFrame, column: str
) -> Chart:
    series = _per_run(frame, runs["run_id"].to_list(), column)
    x = run_labels(runs)
    traces = [_bar(x, values, name) for name, values in series.items()]
    empty = None if series else f"no {title.lower().split(' by ')[0]} in these runs"
    return Chart(key, title, caption, _figure(traces, "count", empty=empty))


def rejects_chart(runs: pl.DataFrame, rejects: pl.DataFrame) -> Chart:
    """Refused fields per run, stacked by validation rule."""
    return _stacked(
        "rejects", "Rejects by rule",
        "Fields refused by validation per run, by rule (a row can break several rules).",
        runs, rejects, "rule",
    )  # fmt: skip


def failures_chart(runs: pl.DataFrame, failures: pl.DataFrame) -> Chart:
    """Failed and ambiguous outcomes per run, stacked by error code."""
    return _stacked(
        "failures", "Failures by error code",
        "Failed and ambiguous records per run, by the provider's error code "
        "(the error class when it gave none).",
        runs, failures, "code",
    )  # fmt: skip


def drift_chart(runs: pl.DataFrame, drift: pl.DataFrame) -> Chart:
    """Fields edited at the provider outside custsync, per run and field."""
    return _stacked(
        "drift", "Drift by field",
        "Fields found edited at the provider outside custsync, per run (v_drift).",
        runs, drift, "field",
    )  # fmt: skip


def latency_chart(runs: pl.DataFrame) -> Chart:
    """Call latency percentiles per run (lines) and the 429s it met (bars, right axis)."""
    x = run_labels(runs)
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "x": x, "y": runs[column].to_list(), "name": column[:3],
         "mode": "lines+markers", "line": {"dash": dash}}
        for column, dash in (("p50_ms", "solid"), ("p95_ms", "dash"), ("p99_ms", "dot"))
    ]  # fmt: skip
    http_429 = runs["http_429"].to_list()
    traces.append(_bar(x, http_429, "HTTP 429", yaxis="y2", opacity=0.45,
                       marker={"color": "#d62728"}))  # fmt: skip
    empty = None if runs["calls"].sum() else "no calls in these runs"
    fig = _figure(traces, "latency (ms)", empty=empty, counts=False)
    fig["layout"] |= {
        "barmode": "overlay",
        "yaxis2": {"title": {"text": "429s"}, "overlaying": "y", "side": "right",
                   "rangemode": "tozero", "showgrid": False, **_whole_ticks(http_429)},
    }  # fmt: skip
    return Chart(
        "latency",
        "Call latency and 429s",
        "Per run: p50, p95 and p99 of every HTTP call's latency (retries included), and the "
        "calls answered 429 (right axis).",
        fig,
    )


def all_charts(
    runs: pl.DataFrame,
    outcomes: pl.DataFrame,
    rejects: pl.DataFrame,
    failures: pl.DataFrame,
    drift: pl.DataFrame,
) -> list[Chart]:
    """The report's charts, in page order."""
    return [
        outcomes_chart(runs, outcomes),
        rejects_chart(runs, rejects),
        failures_chart(runs, failures),
        latency_chart(runs),
        drift_chart(runs, drift),
    ]
