"""``python -m connectors.sandbox``: the same as ``custsync sandbox`` (used by benchmarks)."""

from connectors.sandbox.cli import sandbox_command

if __name__ == "__main__":
    sandbox_command(prog_name="python -m connectors.sandbox")
