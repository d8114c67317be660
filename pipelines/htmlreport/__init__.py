"""The HTML report (``custsync report --html``): charts, records and a customer drill-down of
a state file's last runs, in one self-contained file that opens offline.

Importing it imports plotly (about 30 ms, and plotly.js only when a report is built): the
light commands never import this package.
"""

from __future__ import annotations

from pipelines.htmlreport.build import ReportFacts, build_html, write_html

__all__ = ["ReportFacts", "build_html", "write_html"]
