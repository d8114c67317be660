"""``custsync fleet`` refuses what it cannot run with one ``error:`` line and exit code 2: a
broken tenants file (before importing Prefect), no Prefect API, an API nobody answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO
from tests.e2e.prefect_server import free_port

# Runs the console script's main and says, on its last stderr line, whether Prefect was imported.
# main() is handed the arguments as a caller's list (sys.argv no longer holds them), so it returns
# through the exit handlers instead of ending the process early (pipelines/cli.py: fast exit).
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('prefect-imported:', 'prefect' in sys.modules, "
    "file=sys.stderr))\n"
    "from pipelines.cli import main\n"
    "args, sys.argv = sys.argv[1:], sys.argv[:1]\n"
    "main(args)\n"
)

VALID = '[[tenants]]\nid = "acme"\nextract = "x.csv"\n[tenants.sumup]\napi_key = "ACME_KEY"\n'


def _custsync(tmp: Path, args: list[str], **env: str) -> tuple[int, list[str], bool]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTSYNC_", "PREFECT_"))}
    base.update(PREFECT_HOME=str(tmp / "prefect-home"), **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("prefect-imported:"), done.stderr
    assert "Traceback" not in done.stderr
    return done.returncode, lines[:-1], lines[-1].endswith("True")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("not toml [", "not valid TOML"),
        ('[[tenants]]\nid = "acme"\n[tenants.sumup]\napi_key = "K"\n', "tenant acme: extract"),
        (VALID.replace('"ACME_KEY"', '"sup_sk_literal secret"'), "tenant acme: sumup.api_key"),
        (VALID + 'rate_groups = ["eu"]\n', "tenant acme: sumup.rate_groups: unknown setting"),
        ("[rate_groups.eu]\nrate = 3\n" + VALID, "rate_groups.eu.target"),
    ],
)
def test_a_broken_tenants_file_is_one_line_and_exit_2_without_prefect(
    tmp_path: Path, text: str, where: str
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(text, encoding="utf-8")
    rc, lines, imported = _custsync(tmp_path, ["fleet", str(tenants)])
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {tenants}: "), lines
    assert where in lines[0]
    assert "literal secret" not in lines[0]
    assert not imported


def test_no_prefect_api_is_exit_2_naming_the_setting(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(VALID, encoding="utf-8")
    rc, lines, _ = _custsync(tmp_path, ["fleet", str(tenants)])
    assert rc == 2
    assert len(lines) == 1 and "PREFECT_API_URL" in lines[0], lines


def test_an_api_nobody_answers_is_exit_2(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(VALID, encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}/api"
    rc, lines, _ = _custsync(tmp_path, ["fleet", str(tenants)], PREFECT_API_URL=url)
    assert rc == 2
    assert len(lines) == 1 and f"cannot reach the Prefect API at {url}" in lines[0], lines
