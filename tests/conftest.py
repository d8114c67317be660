"""Test-wide setup: no network beyond loopback, a private Prefect home, no analytics."""

from __future__ import annotations

import os
import tempfile

# Must be set before Prefect is imported anywhere in the test session.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="custsync-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
