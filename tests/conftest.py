"""Test-wide setup: no network beyond loopback, a private Prefect home, no analytics."""

from __future__ import annotations

import os
import tempfile

# Must be set before Prefect is imported anywhere in the test session.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="custsync-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# Hypothesis' per-example deadline is a wall-clock timing: on a loaded shared machine a
# 5 ms example sometimes takes 250 ms, and the test fails for it. Timings are not asserted.
from hypothesis import settings

settings.register_profile("custsync", deadline=None)
# CI (CI=true) explores the same examples every run, so a red CI is reproducible and a green one
# is not luck; a developer's run draws new examples each time and keeps what fails in
# .hypothesis/ to replay.
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "custsync")
