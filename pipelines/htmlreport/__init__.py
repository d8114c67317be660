"""The HTML report (``custsync report --html``): charts, records and a customer drill-down of
a state file's last runs, in one self-contained file that opens offline.

plotly (the Python package) is imported only when a report is built, for the plotly.js it
ships; the figures are plain JSON (:mod:`~pipelines.htmlreport.charts`). The table reports
never import this package.
"""

from __future__ import annotations

from pipelines.htmlreport.build import ReportFacts, build_html, write_html

__all__ = ["ReportFacts", "build_html", "write_html"]
